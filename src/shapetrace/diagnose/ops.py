"""Families of torch ops that the diagnosis and the lints reason about, by qualname."""

from __future__ import annotations

import os
from functools import lru_cache


@lru_cache(maxsize=1024)
def installed_package(file: str) -> bool:
    """Whether ``file`` belongs to an installed package (site-packages): a library's code, which
    its user cannot change. Lints about performance and style report the user's code only."""
    parts = file.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


def base_name(qualname: str) -> str:
    """``torch.nn.functional.linear`` -> ``linear``; ``Tensor.__matmul__`` -> ``__matmul__``."""
    return qualname.rsplit(".", 1)[-1]


# Calls that make a tensor from nothing, on the default device unless given ``device=``.
FACTORIES = frozenset(
    f"torch.{name}"
    for name in (
        "zeros", "ones", "empty", "full", "rand", "randn", "randint", "randperm", "arange", "range",
        "linspace", "logspace", "eye", "tensor", "as_tensor", "asarray", "scalar_tensor", "empty_strided",
        "tril_indices", "triu_indices", "from_numpy", "frombuffer", "hann_window", "hamming_window",
        "blackman_window", "bartlett_window", "kaiser_window",
    )
)  # fmt: skip

# Factories that cannot take ``device=``: the fix is ``.to(device)``.
NO_DEVICE_KWARG = frozenset({"torch.from_numpy", "torch.frombuffer"})

# Ops whose tensor operands only lend a device, dtype or shape, or that copy across devices:
# their operands may legally sit on different devices, and their result is re-homed.
REHOMING = frozenset(
    {"Tensor.to", "Tensor.cuda", "Tensor.type_as", "Tensor.copy_", "Tensor.expand_as", "Tensor.view_as",
     "Tensor.reshape_as", "torch.zeros_like", "torch.ones_like", "torch.empty_like", "torch.full_like",
     "torch.rand_like", "torch.randn_like", "torch.randint_like"}
    | {f"Tensor.new_{name}" for name in ("tensor", "zeros", "ones", "empty", "full", "empty_strided")}
)  # fmt: skip

# Indexing: a CPU index tensor may index a tensor on any device; only operand 0 must match.
INDEXING = frozenset({"Tensor.__getitem__", "Tensor.__setitem__"})

# Ops that make the host wait for the device, with what the user wrote.
HOST_SYNCS = {
    "Tensor.item": "`.item()` copies a value to the host",
    "Tensor.tolist": "`.tolist()` copies the tensor to the host",
    "Tensor.numpy": "`.numpy()` copies the tensor to the host",
    "Tensor.cpu": "`.cpu()` copies the tensor to the host",
    "Tensor.nonzero": "`nonzero` has a data-dependent size, so the host waits for its result",
    "torch.nonzero": "`nonzero` has a data-dependent size, so the host waits for its result",
    "torch.argwhere": "`argwhere` has a data-dependent size, so the host waits for its result",
    "torch.masked_select": "`masked_select` has a data-dependent size, so the host waits for its result",
    "torch.unique": "`unique` has a data-dependent size, so the host waits for its result",
    "Tensor.unique": "`unique` has a data-dependent size, so the host waits for its result",
    "Tensor.__repr__": "printing a tensor copies it to the host",
    "Tensor.__format__": "formatting a tensor into a string copies it to the host",
    "torch.object.__str__": "printing a tensor copies it to the host",
    "Tensor.__bool__": "using a tensor as a Python bool (`if t:`, `and`, `bool(t)`) reads its value on the host",
    "Tensor.__int__": "`int(t)` reads the tensor's value on the host",
    "Tensor.__float__": "`float(t)` reads the tensor's value on the host",
    "Tensor.__index__": "using a tensor as a Python index reads its value on the host",
}

MATMULS = frozenset({"matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "mv", "addmm", "baddbmm", "addmv"})
CATS = frozenset({"cat", "concat", "concatenate"})
VIEWS = frozenset({"view", "reshape"})
CONVS = frozenset({"conv1d", "conv2d", "conv3d"})
CONV_TRANSPOSES = frozenset({"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"})
POOLS = frozenset(
    f"{kind}_pool{n}d{suffix}" for kind in ("max", "avg") for n in (1, 2, 3) for suffix in ("", "_with_indices")
    if not (kind == "avg" and suffix)
)  # fmt: skip
# Losses that compare an input with a target elementwise (they broadcast a target of another shape).
ELEMENTWISE_LOSSES = frozenset(
    {"mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
     "binary_cross_entropy_with_logits", "soft_margin_loss"}
)  # fmt: skip

# Operand names of common ops, in the order the recorder lists their tensors.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "linear": ("input", "weight", "bias"),
    "bilinear": ("input1", "input2", "weight", "bias"),
    "embedding": ("input", "weight"),
    "layer_norm": ("input", "weight", "bias"),
    "group_norm": ("input", "weight", "bias"),
    "batch_norm": ("input", "running_mean", "running_var", "weight", "bias"),
    "addmm": ("input", "mat1", "mat2"),
    "baddbmm": ("input", "batch1", "batch2"),
    "addmv": ("input", "mat", "vec"),
    "mm": ("input", "mat2"),
    "bmm": ("input", "mat2"),
    "mv": ("input", "vec"),
    **{name: ("input", "weight", "bias") for name in CONVS | CONV_TRANSPOSES},
}

# Ops whose operands do not broadcast against each other: a size error there is not broadcasting.
NOT_ELEMENTWISE = frozenset(
    {"einsum", "bilinear", "embedding", "gather", "scatter", "scatter_add", "index_select", "index_add",
     "index_copy", "take_along_dim", "layer_norm", "group_norm", "batch_norm", "instance_norm",
     "cross_entropy", "nll_loss", "ctc_loss", "scaled_dot_product_attention", "multi_head_attention_forward",
     "embedding_bag", "linear", "conv1d", "conv2d", "conv3d", "cat", "stack", "mm", "bmm", "mv"}
)  # fmt: skip
