"""trace(): what is recorded, in what order, under which names, from which lines."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import shapetrace
from shapetrace.render.export import to_text


def ops_of(t: shapetrace.Trace) -> list[tuple[str, tuple]]:
    return [(op.op, op.outputs[0].shape if op.outputs else None) for op in t.ops]


def test_tokenize_image_ops_shapes_and_lines(examples):
    path = examples.path("tokenize_image")
    with shapetrace.trace() as t:
        examples.load("tokenize_image").tokenize_image()
    assert ops_of(t) == [
        ("rand", (8, 512, 4, 4)),
        ("flatten", (8, 512, 16)),
        ("transpose", (8, 16, 512)),
        ("@", (8, 512, 512)),
    ]
    lines = path.read_text().splitlines()
    for op in t.ops:
        assert op.file == str(path)
        assert lines[op.line - 1].strip() == op.code
    assert t.ops[1].code.startswith("h = image.flatten(2)")
    assert t.ops[1].qualname == "Tensor.flatten"
    assert t.ops[0].qualname == "torch.rand"


def test_patch_embedding_ops_modules_and_metadata(examples):
    pe = examples.load("patch_embed")
    model = pe.PatchEmbedding(img_size=128, in_ch=3, embed_dim=512, patch_size=32)
    x = torch.rand(8, 3, 128, 128)
    with shapetrace.trace(model) as t:
        model(x)
    assert [(op.op, op.module) for op in t.ops] == [
        ("conv2d", "patch_embed"),
        ("flatten", ""),
        ("transpose", ""),
        ("expand", ""),
        ("cat", ""),
        ("+", ""),
        ("dropout", "dropout"),
    ]
    conv, *_, cat, add, _ = t.ops
    assert conv.qualname == "torch.nn.functional.conv2d"
    assert [m.shape for m in conv.inputs] == [(8, 3, 128, 128), (512, 3, 32, 32), (512,)]
    assert [m.requires_grad for m in conv.inputs] == [False, True, True]
    assert conv.code.startswith("x = self.patch_embed(x)  ")
    assert cat.inputs[0].shape == (8, 1, 512) and cat.inputs[1].shape == (8, 16, 512)
    assert cat.outputs[0].shape == (8, 17, 512)
    assert add.inputs[1].shape == (1, 17, 512)
    out = add.outputs[0]
    assert (out.dtype, out.device, out.requires_grad) == (torch.float32, torch.device("cpu"), True)
    assert [(m.path, m.type, m.call, m.parent, m.depth) for m in t.modules] == [
        ("", "PatchEmbedding", 1, None, 0),
        ("patch_embed", "Conv2d", 1, 0, 1),
        ("dropout", "Dropout", 1, 0, 1),
    ]
    root = t.modules[0]
    assert root.inputs[0].shape == (8, 3, 128, 128) and root.outputs[0].shape == (8, 17, 512)
    assert (root.first_op, root.end_op) == (0, 7)
    assert t.modules[1].code == conv.code
    assert t.summary.model_type == "PatchEmbedding"
    assert t.summary.parameters == sum(p.numel() for p in model.parameters())


def test_operators_are_named_as_written():
    x, y = torch.rand(3, 3), torch.rand(3, 3)
    with shapetrace.trace() as t:
        x + y
        x @ y
        x[0]
        1 - x
        x * 2
        x / y
        -x
        x > y
        x.add(y)
        torch.add(x, y)
        x.T
        z = x.clone()
        z += 1
        z[0] = 1.0
    assert [op.op for op in t.ops] == [
        "+", "@", "[]", "-", "*", "/", "-", ">", "add", "add", "T", "clone", "+=", "[]=",
    ]  # fmt: skip
    assert t.ops[9].qualname == "torch.add" and t.ops[8].qualname == "Tensor.add"


def test_reads_and_attribute_writes_are_not_ops():
    x = torch.rand(2, 3)
    with shapetrace.trace() as t:
        x.shape, x.size(), x.dim(), x.ndim, x.device, x.dtype, x.numel(), len(x), x.is_contiguous()
        x.requires_grad = True
        torch.device("cpu")
        y = x.sum()
    assert [op.op for op in t.ops] == ["sum"]
    assert y.requires_grad


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(4, 4)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shared(x)                                  # (B, 4)
        x = self.net(x)                                     # (B, 4)
        return self.shared(x)                               # (B, 4)


def test_module_paths_follow_named_modules_with_call_numbers():
    model, x = Encoder(), torch.rand(2, 4)
    with shapetrace.trace(model) as t:
        model(x)
    assert [(m.path, m.call, m.depth) for m in t.modules] == [
        ("", 1, 0), ("shared", 1, 1), ("net", 1, 1), ("net.0", 1, 2), ("net.1", 1, 2), ("net.2", 1, 2),
        ("shared", 2, 1),
    ]  # fmt: skip
    assert [(op.op, op.module, op.module_call) for op in t.ops] == [
        ("linear", "shared", 1), ("linear", "net.0", 1), ("gelu", "net.1", 1), ("linear", "net.2", 1),
        ("linear", "shared", 2),
    ]  # fmt: skip
    assert [t.module_label(op.module_index) for op in t.ops] == [
        "shared#1", "net.0", "net.1", "net.2", "shared#2",
    ]  # fmt: skip
    # ops inside torch's own modules are attributed to the user's line that called the module
    assert t.ops[0].code == "x = self.shared(x)                                  # (B, 4)"
    assert t.ops[4].code.startswith("return self.shared(x)")


def test_a_modules_own_hooks_run_inside_its_call_and_its_output_is_what_the_call_returned():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    model[0].register_forward_pre_hook(lambda module, args: (args[0] * 2,))         # (2, 4)
    model[0].register_forward_hook(lambda module, args, output: output.unsqueeze(0))  # (1, 2, 4)
    x = torch.rand(2, 4)
    with shapetrace.trace(model) as t:
        model(x)
    assert [(op.op, op.module) for op in t.ops] == [("*", "0"), ("linear", "0"), ("unsqueeze", "0"), ("relu", "1")]
    linear = t.modules[1]
    assert [i.shape for i in linear.inputs] == [(2, 4)]  # as the module was called, before its pre-hook
    assert [o.shape for o in linear.outputs] == [(1, 2, 4)]  # what the call returned, after its hook


def test_trace_without_model_names_modules_relative_to_each_root():
    model, x = Encoder(), torch.rand(2, 4)
    with shapetrace.trace() as t:
        model(x)
        model.net(x)
    paths = [(m.path, m.type, m.call) for m in t.modules]
    assert paths[0] == ("", "Encoder", 1)
    assert ("net.1", "GELU", 2) in paths  # the second call, as a root of its own, keeps its name
    assert [op.op for op in t.ops] == ["linear", "linear", "gelu", "linear", "linear"] + ["linear", "gelu", "linear"]


@dataclasses.dataclass
class Output:
    logits: torch.Tensor
    hidden: tuple[torch.Tensor, ...]


class ModelOutputLike(OrderedDict):
    """A transformers-style ModelOutput: a dict that is also a dataclass."""


@dataclasses.dataclass
class MaskedOutput(ModelOutputLike):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class Nested(nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        a, b = x.chunk(2, dim=-1)                           # (B, 2), (B, 2)
        return {
            "pair": (a, [b]),
            "out": Output(logits=a.sum(-1), hidden=(a, b)),
            "masked": MaskedOutput(logits=b),
        }


def test_nested_inputs_and_outputs_keep_their_paths():
    model, x, mask = Nested(), torch.rand(3, 4), torch.ones(3, 1)
    with shapetrace.trace(model) as t:
        model(x, mask=mask)
    (call,) = t.modules
    assert [(m.path, m.shape) for m in call.inputs] == [("[0]", (3, 4)), ("['mask']", (3, 1))]
    assert [(m.path, m.shape) for m in call.outputs] == [
        ("['pair'][0]", (3, 2)),
        ("['pair'][1][0]", (3, 2)),
        ("['out'].logits", (3,)),
        ("['out'].hidden[0]", (3, 2)),
        ("['out'].hidden[1]", (3, 2)),
        ("['masked'].logits", (3, 2)),
    ]
    chunk = t.ops[0]  # a, b = x.chunk(2, dim=-1)
    assert chunk.op == "chunk" and [m.path for m in chunk.outputs] == ["[0]", "[1]"]


def test_internal_torch_work_outside_forward_is_not_recorded():
    x = torch.rand(2, 4)
    with shapetrace.trace() as t:
        model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))  # torch.empty, kaiming_uniform_ ...
        model.to("cpu")  # one `to` per parameter inside Module.to
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        with torch.no_grad():
            nn.init.zeros_(model[0].bias)  # the user's own call: its op is recorded
        model(x).sum().backward()
        optimizer.step()
    assert [op.op for op in t.ops] == ["zero_", "linear", "layer_norm", "sum", "backward"]
    assert t.ops[0].code == "nn.init.zeros_(model[0].bias)  # the user's own call: its op is recorded"


def test_ops_inside_modules_outside_the_traced_model_are_recorded():
    model, loss_fn = nn.Linear(4, 3), nn.CrossEntropyLoss()
    x, target = torch.rand(2, 4), torch.tensor([0, 2])
    with shapetrace.trace(model) as t:
        loss = loss_fn(model(x), target)
        loss.backward()
    assert [op.op for op in t.ops] == ["linear", "cross_entropy", "backward"]
    assert [m.path for m in t.modules] == [""]  # only the traced model's modules
    assert t.ops[1].module is None


def test_dtype_and_device_of_every_tensor():
    with shapetrace.trace() as t:
        a = torch.rand(2, 2, dtype=torch.float64)
        a.half()
        torch.ones(3, device="meta")
    assert [(op.outputs[0].dtype_name, op.outputs[0].device_name) for op in t.ops] == [
        ("float64", "cpu"),
        ("float16", "cpu"),
        ("float32", "meta"),
    ]


def test_op_inside_plain_function_called_through_python_wrappers():
    def helper(x):
        return F.dropout(x, 0.5, training=False)

    with shapetrace.trace() as t:
        helper(torch.rand(2))
        torch.rand(4).split(2)
    assert [op.op for op in t.ops] == ["rand", "dropout", "rand", "split"]
    assert t.ops[1].code == "return F.dropout(x, 0.5, training=False)"


def test_trace_is_readable_while_running_and_repr():
    with shapetrace.trace() as t:
        torch.rand(2)
        assert len(t.ops) == 1
        torch.rand(3)
    assert len(t.ops) == 2 and len(t) == 2
    assert repr(t) == "<Trace 2 ops, 0 module calls>"


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_traces_on_meta_without_allocating(device):
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8)).to(device)
    x = torch.rand(4, 16, device=device)
    with shapetrace.trace(model) as t:
        model(x)
    assert [str(op.outputs[0].device) for op in t.ops] == [device] * 3
    assert t.ops[-1].outputs[0].shape == (4, 8)


def test_lazy_modules_trace_and_are_counted_once_initialised():
    model, x = nn.Sequential(nn.LazyLinear(3), nn.ReLU()), torch.rand(2, 5)
    with shapetrace.trace(model, symbolic=False) as t:
        model(x)
    assert t.modules[1].outputs[0].shape == (2, 3)
    assert t.summary.parameters == 5 * 3 + 3 and t.summary.uninitialised == 0

    failing, x = nn.Sequential(nn.Linear(4, 4), nn.LazyLinear(3)), torch.rand(2, 5)
    with pytest.raises(RuntimeError), shapetrace.trace(failing, symbolic=False) as t:
        failing(x)  # fails in the Linear, before the LazyLinear is initialised
    assert t.summary.parameters is None and t.summary.uninitialised == 2
    assert "2 of lazy modules not initialised yet" in to_text(t.view("tree"))


class Tied(nn.Module):
    """One Linear under two attribute names: ``named_modules()`` lists it once, as ``first``."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.second = self.first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))                   # (B, 4)


def test_a_module_registered_under_two_names_gets_its_first_name():
    model, x = Tied(), torch.rand(2, 4)
    assert [name for name, _ in model.named_modules()] == ["", "first"]
    with shapetrace.trace(model) as t:
        model(x)
    assert [(m.path, m.call) for m in t.modules] == [("", 1), ("first", 1), ("first", 2)]
    assert [op.module for op in t.ops] == ["first", "first"]


def test_a_failure_re_raised_as_another_exceptions_cause_keeps_its_op_index():
    a, b = torch.rand(2, 3), torch.rand(4, 5)
    with pytest.raises(ValueError), shapetrace.trace() as t:
        a.sum()
        try:
            a @ b
        except RuntimeError as error:
            raise ValueError("wrapped") from error
    assert (t.error.type, t.error.op_index) == ("ValueError", 1)
    assert t.failing_op() is t.ops[1] and t.ops[1].failed
    with pytest.raises(KeyError), shapetrace.trace() as t:
        try:
            a @ b
        except RuntimeError:
            raise KeyError("raised while handling it")  # noqa: B904  (the failure is its __context__)
    assert (t.error.type, t.error.op_index) == ("KeyError", 0)


def test_an_exception_unrelated_to_a_failed_op_has_no_op_index():
    a, b = torch.rand(2, 3), torch.rand(4, 5)
    with pytest.raises(ValueError), shapetrace.trace() as t:
        try:
            a @ b
        except RuntimeError:
            pass
        raise ValueError("later, for another reason")
    assert t.error.op_index is None and t.failing_op() is None
