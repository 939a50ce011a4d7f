"""The new fake tensors the symbolic pass makes without the fake mode's dispatch (``ts.empty``,
``ts.strided_alias``, ``ts.alias``) are the tensors torch makes: the same sizes, strides and
storage (the same SymInt expressions and values), the same answers to contiguity questions, and
the same guards in the ShapeEnv. These fail loudly when the private torch APIs they use move."""

from __future__ import annotations

import collections
import contextlib
import warnings

import pytest
import torch
from torch._prims_common import is_non_overlapping_and_dense_or_false
from torch.fx.experimental.sym_node import SymNode

from shapetrace._private import torch_symbolic as ts

DIMS = {"B": 4, "H": 32, "W": 48}


def _env():
    """A fake mode with the dims of :data:`DIMS` as symbols (each call: a fresh ShapeEnv with the
    same symbols, as each pass makes)."""
    mode, env = ts.make_fake_mode()
    return mode, env, {name: ts.symint(env, ts.named_symbol(env, name, value), value) for name, value in DIMS.items()}


def _int(value):
    """A size, stride or storage size as the expression torch computed and its value."""
    if isinstance(value, torch.SymInt):
        node = value.node
        return (node._expr, node.hint, node.pytype, node.fx_node, node._optimized_summation)
    return value


def _described(t: torch.Tensor, env) -> dict:
    """Everything a fake tensor shows, and then what asking about its layout adds to its ShapeEnv."""
    storage = t.untyped_storage()
    made = {
        "type": type(t), "keys": repr(torch._C._dispatch_keys(t)), "device": t.device, "dtype": t.dtype,
        "sizes": [_int(s) for s in t.shape], "strides": [_int(s) for s in t.stride()], "offset": _int(t.storage_offset()),
        "storage": (_int(storage.nbytes()), storage.device, storage.resizable()), "requires_grad": t.requires_grad,
        "leaf": t.is_leaf, "view": t._is_view(), "inference": t.is_inference(), "layout": t.layout,
        "state": {k: v for k, v in vars(t).items() if k != "fake_mode"}, "mode": t.fake_mode is not None,
        "guards": [guard.expr for guard in env.guards],
    }  # fmt: skip
    asked = {
        "contiguous": t.is_contiguous(),
        "channels_last": t.is_contiguous(memory_format=torch.channels_last) if t.dim() == 4 else None,
        "dense": is_non_overlapping_and_dense_or_false(t),
        "numel": _int(t.numel()),
    }
    with t.fake_mode:
        asked["empty_like"] = [_int(s) for s in torch.empty_like(t).stride()]  # reads torch's own layout flags
    asked["guards"] = [guard.expr for guard in env.guards]
    asked["replacements"] = dict(env.replacements)
    return {"made": made, "asked": asked}


def _data_pointer_raises(t: torch.Tensor) -> bool:
    """Whether reading a fake tensor's data pointer raises (torch flags each new fake tensor to
    raise, or to warn once in the process, as its mode says)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            t.untyped_storage().data_ptr()
        except RuntimeError:
            return True
    return False


SHAPES = {
    "image batch": lambda d: [d["B"], 64, (d["H"] - 1) // 2 + 1, (d["W"] - 1) // 2 + 1],
    "1-d": lambda d: [d["B"]],
    "tokens": lambda d: [d["B"], d["H"] * d["W"], 7],
    "static first": lambda d: [7, d["B"]],
    "product": lambda d: [d["B"] * d["H"], 12],
    "static 1s": lambda d: [d["B"], 1, 1, 5],
    "a size the ranges do not keep at 0": lambda d: [d["B"], 3, d["H"] - 20, d["W"]],  # torch guards H >= 20
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bool])
@pytest.mark.parametrize("shape", SHAPES)
def test_a_new_tensor_is_torchs_empty(shape, dtype):
    """Torch's fake ``torch.empty`` and ``ts.empty``, each in a fresh ShapeEnv: the first
    ``ts.empty`` of these sizes in the process (torch's meta ``empty``), then a later one (the
    storage size torch computed, the rest made as torch makes it)."""
    described = []
    for maker in ("torch", "first", "later"):
        mode, env, dims = _env()
        sizes = SHAPES[shape](dims)
        if maker == "torch":
            with mode:
                made = torch.empty(sizes, dtype=dtype)
        else:
            if maker == "first":
                ts._storage_sizes.clear()
            made = ts.empty(mode, sizes, dtype, torch.device("cpu"))
        assert made.fake_mode is mode
        described.append(_described(made, env))
    torchs, first, later = described
    assert first == torchs
    assert later == torchs


def test_a_new_tensor_on_replaced_symbols_is_torchs_empty():
    """Sizes whose symbols a guard replaced (``B == N``): torch's arithmetic reads them replaced,
    and the tensor keeps the sizes it was given."""
    described = []
    for maker in ("torch", "first", "later"):
        mode, env, dims = _env()
        n = ts.symint(env, ts.named_symbol(env, "N", 4), 4)
        with mode:
            torch.empty(dims["B"]) + torch.empty(n)  # B == N: one replaces the other
        sizes = [n, dims["H"], 3]
        if maker == "torch":
            with mode:
                made = torch.empty(sizes)
        else:
            if maker == "first":
                ts._storage_sizes.clear()
            made = ts.empty(mode, sizes, torch.float32, torch.device("cpu"))
        described.append(_described(made, env))
    assert described[1] == described[0] and described[2] == described[0]


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
def test_a_new_image_batch_in_a_layout_is_torchs(memory_format):
    described = []
    for maker in ("torch", "ours", "ours again"):
        mode, env, dims = _env()
        sizes = SHAPES["image batch"](dims)
        if maker == "torch":
            with mode:
                made = torch.empty(sizes, memory_format=memory_format)
        else:
            made = ts.empty(mode, sizes, torch.float32, torch.device("cpu"), memory_format)
        described.append(_described(made, env))
    assert described[1] == described[0] and described[2] == described[0]


@contextlib.contextmanager
def _symint_operations():
    """Counts the SymInt operations torch's C++ asks of Python (``mul``, ``sym_max``, ``ge``, ...)."""
    counted: collections.Counter = collections.Counter()
    names = ("mul", "add", "sym_max", "ge", "expect_true", "guard_bool")
    originals = {name: getattr(SymNode, name) for name in names}

    def counting(name):
        def operation(self, *args, **kwargs):
            counted[name] += 1
            return originals[name](self, *args, **kwargs)

        return operation

    for name in names:
        setattr(SymNode, name, counting(name))
    try:
        yield counted
    finally:
        for name, original in originals.items():
            setattr(SymNode, name, original)


def test_a_later_tensor_of_the_same_sizes_skips_torchs_checks_and_storage_arithmetic(dispatches):
    """What makes a later ``ts.empty`` cheaper: of torch's meta ``empty`` only the strides'
    arithmetic runs (two ``max(size, 1)`` and three products on 4-d sizes), not its check of
    each size against 0 nor the storage size's products; nothing is dispatched."""
    sizes_of = SHAPES["image batch"]
    ts._storage_sizes.clear()
    mode, env, dims = _env()
    sizes = sizes_of(dims)
    with _symint_operations() as torchs:
        ts.empty(mode, sizes, torch.float32, torch.device("cpu"))
    mode, env, dims = _env()
    sizes = sizes_of(dims)
    with _symint_operations() as later, mode, dispatches() as dispatched:
        ts.empty(mode, sizes, torch.float32, torch.device("cpu"))
    assert dispatched.seen == []
    assert torchs["ge"] == 3 and torchs["mul"] > later["mul"]  # torch's: B, H/2, W/2 checked; numel's products
    assert later == {"sym_max": 2, "mul": 3}


def _twice(make, *args):
    """``make(*args)`` called twice, the second result: the first new fake tensor of a mode and
    device is made by torch's constructor, the next ones as torch's makes them (``ts._fake``)."""
    make(*args)
    return make(*args)


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "cut"])
def test_an_alias_is_torchs_fast_detach(layout):
    from torch._subclasses.fake_impls import fast_detach

    described = []
    for maker in ("torch", "ours"):
        mode, env, dims = _env()
        with mode:
            x = torch.empty(dims["B"], 3, dims["W"])
            x = {"contiguous": x, "transposed": x.transpose(1, 2), "cut": x[:, 1:]}[layout]
        made = fast_detach(mode, x) if maker == "torch" else _twice(ts.alias, x)
        described.append(_described(made, env))
    assert described[1] == described[0]


def test_a_strided_alias_is_torchs_as_strided_but_for_autograd():
    """Torch's fake ``as_strided`` (what a carried view stands for) and ``ts.strided_alias``:
    the same tensor on the same storage; torch's is also a view for autograd."""
    described = []
    for maker in ("torch", "ours"):
        mode, env, dims = _env()
        with mode:
            x = torch.empty(dims["B"], dims["H"], 12)
        sizes, strides = [dims["B"], 3, dims["H"] - 1, 4], [dims["H"] * 12, 4, 12, 1]  # heads of x[:, 1:]
        if maker == "torch":
            with mode:
                made = torch.as_strided(x, sizes, strides, 12)
        else:
            made = _twice(ts.strided_alias, x, sizes, strides, 12)
        assert made.untyped_storage()._cdata == x.untyped_storage()._cdata
        described.append(_described(made, env))
    torchs, ours = described
    assert torchs["made"].pop("view") and not ours["made"].pop("view")
    assert ours == torchs


def test_new_fake_tensors_have_the_attributes_torchs_constructor_gives(monkeypatch):
    """The attributes of a fake tensor made after the first of its mode and device are those
    torch's constructor gives, for each device; with torch's debug tracebacks every tensor is
    made by torch's constructor."""
    mode, env, dims = _env()
    with mode:
        x = torch.empty(dims["B"], 3)
    for device in (torch.device("cpu"), torch.device("cuda", 0), torch.device("meta")):
        meta = torch.empty(2, 3, device="meta")  # a plain meta tensor: fake tensors' insides
        mode.allow_meta = True
        torchs = torch._subclasses.fake_tensor.FakeTensor(mode, meta.detach(), device)
        ours = _twice(ts._fake, mode, meta.detach(), device)
        for unsafe in (False, True):  # the flag is the storage's: a new meta tensor each
            mode._allow_unsafe_data_ptr_access = unsafe
            torchs = torch._subclasses.fake_tensor.FakeTensor(mode, torch.empty(2, device="meta"), device)
            ours = ts._fake(mode, torch.empty(2, device="meta"), device)
            assert _data_pointer_raises(ours) == _data_pointer_raises(torchs) == (not unsafe)
        assert vars(ours) == vars(torchs) and type(ours) is type(torchs)
        assert repr(torch._C._dispatch_keys(ours)) == repr(torch._C._dispatch_keys(torchs))
        assert ours.device == torchs.device == device
    monkeypatch.setattr(torch._subclasses.fake_tensor.FakeTensorConfig, "debug", True)
    assert hasattr(ts.alias(x), "_debug_trace")
