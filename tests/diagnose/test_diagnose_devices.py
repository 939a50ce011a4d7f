"""Device mismatches, with `meta` as the second device (a meta/cpu mix fails the way a cuda/cpu
mix does) and fake CUDA tensors: which operand is where, where it came from, and the fix."""

from __future__ import annotations

import inspect

import planted
import pytest
import torch
from planted import line_of
from torch._subclasses.fake_tensor import FakeTensorMode

from shapetrace import trace


def test_factory_without_device(run_failing, plain_error):
    model, att = planted.CausalMask().to("meta"), torch.rand(2, 4, 4, device="meta")
    t, error, d = run_failing(model, att)
    assert type(error) is type(plain_error(model, att)) and str(error) == str(plain_error(model, att))
    assert (d.kind, d.line, d.op, d.module) == (
        "device-mismatch",
        line_of("mask-meets"),
        "masked_fill",
        "CausalMask",
    )
    assert [(o.role, o.meta.device_name) for o in d.operands] == [("att", "meta"), ("mask == 0", "cpu")]
    assert "`att` (d0, d1, N) is on meta, `mask == 0` (N, N) is on cpu" in d.message  # N = att.size(-1)
    assert (
        f"`mask == 0` is on cpu: it comes from `torch.ones(N, N)` at planted.py:{line_of('factory')}, "
        "which has no device=, so it makes tensors on the default device (cpu)." in d.message
    )
    assert d.fix == "`torch.ones(N, N, device=att.device)`"
    assert [x.kind for x in t.diagnostics] == ["device-mismatch"]  # the factory's lint is this diagnosis


def test_factory_without_device_on_fake_cuda(run_failing):
    with FakeTensorMode():
        att = torch.rand(2, 4, 4, device="cuda")
        _, error, d = run_failing(planted.CausalMask(), att)
    assert (
        str(error)
        == "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"
    )
    assert (
        d.kind == "device-mismatch"
        and "`att` (d0, d1, N) is on cuda:0, `mask == 0` (N, N) is on cpu" in d.message
    )
    assert d.fix == "`torch.ones(N, N, device=att.device)`"


def test_plain_tensor_attribute_left_behind_by_to(run_failing):
    _, _, d = run_failing(planted.ScaledNorm().to("meta"), torch.rand(2, 3, 8, device="meta"))
    assert (d.kind, d.line) == ("device-mismatch", line_of("attribute-use"))
    scale = d.operands[1]
    assert (scale.role, scale.meta.device_name, scale.origin.kind) == ("self.scale", "cpu", "attribute")
    assert "not a parameter or registered buffer, so `model.to(...)` did not move it" in d.message
    assert d.fix == (
        '`self.register_buffer("scale", torch.ones(dim))` in `__init__` '
        f"(instead of `self.scale = ...` at planted.py:{line_of('attribute-set')})"
    )


def test_cpu_call_moves_a_tensor_off_the_device(run_failing):
    with FakeTensorMode():
        x = torch.rand(2, 8, device="cuda")
        t, _, d = run_failing(planted.CenterOnHost(), x)
    assert (d.kind, d.line) == ("device-mismatch", line_of("cpu-meets"))
    mean = d.operands[1]
    assert (mean.role, mean.meta.device_name) == ("mean", "cpu")
    assert (
        f"`mean` is on cpu: `x.mean(dim=1, keepdim=True).cpu()` at planted.py:{line_of('cpu')} moved it from cuda:0 to cpu"
        in d.message
    )
    assert d.fix == "keep it on the device: `x.mean(dim=1, keepdim=True)` (without `.cpu()`)"
    assert [x.kind for x in t.diagnostics] == ["device-mismatch"]  # the .cpu() host sync is this diagnosis


def test_input_on_another_device_than_the_model(run_failing):
    model = planted.Normed().to("meta")
    image = torch.rand(2, 3, 8)
    with pytest.raises(RuntimeError), trace(model) as t:
        model(image)
    line_of_call = inspect.currentframe().f_lineno - 1
    d = t.diagnostics[0]
    assert (d.kind, d.line, d.module) == ("device-mismatch", line_of("input-device"), "norm (LayerNorm)")
    assert [(o.role, o.meta.device_name) for o in d.operands] == [
        ("x", "cpu"),
        ("weight", "meta"),
        ("bias", "meta"),
    ]
    assert (
        "`x` is on cpu: it is `image`, an input of Normed" in d.message
        and "while the model is on meta" in d.message
    )
    assert d.fix == "move the input to the model's device before the call: `model(image.to(next(model.parameters()).device))`"
    assert d.fix_checked and [(e.line, e.text) for e in d.edits] == [(line_of_call, "image.to(next(model.parameters()).device)")]


def test_the_walk_back_passes_through_ops_that_keep_the_device():
    """`mask == 0` came from `.tril()` of `torch.ones(...)`: the origin is the factory, two ops back."""
    from shapetrace.diagnose.provenance import Dataflow

    model, att = planted.CausalMask().to("meta"), torch.rand(2, 4, 4, device="meta")
    with pytest.raises(RuntimeError), trace(model) as t:
        model(att)
    flow = Dataflow(t, t.evidence)
    failing = t.failing_op()
    mask = failing.inputs[1]
    assert flow.producer(mask.tensor_id, failing.index).op == "=="
    origin = flow.device_origin(mask, failing.index)
    assert (origin.kind, origin.line, t.ops[origin.op_index].op) == ("factory", line_of("factory"), "ones")
    assert flow.origin(failing.inputs[0], failing.index).kind == "input"


def test_an_input_passed_through_a_helper_gets_no_wrong_name(shapes):
    """`shapes(model, image)` called the model: its first argument is the model, not the input."""
    model = planted.Normed().to("meta")
    image = torch.rand(2, 3, 8)
    with pytest.raises(RuntimeError) as info:
        shapes(model, image)
    (note,) = info.value.__notes__
    flat = " ".join(note.split())
    assert "x (2, 3, 8) float32 cpu <- an input of Normed, called at test_diagnose_devices.py:" in flat
    assert "`x` is on cpu: it is an input of Normed" in flat and "`model`" not in flat


def test_a_sequential_layer_input_is_not_named_after_the_sequential_argument(run_failing):
    """The line `self.layers(x)` called the Sequential, which called its layers: `x` is not their input."""

    class Stack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(6, 2))

        def forward(self, x):
            return self.layers(x)

    _, _, d = run_failing(Stack(), torch.rand(2, 4))
    assert (d.kind, d.module) == ("matmul-shape", "layers.2 (Linear)")
    assert [(o.role, o.meta.shape) for o in d.operands][0] == ("input", (2, 8))


class Normalized(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def test_a_buffer_whose_id_an_earlier_tensor_had_does_not_decide_the_models_device():
    # The buffers are made on the CPU inside the trace, then moved: their CPU tensors are freed,
    # and CPython may give a moved buffer the id of one of them (it did, depending on the tests
    # run before). The evidence must not take that earlier CPU tensor for the buffer.
    images = torch.rand(2, 3, 8, 8)
    with pytest.raises(RuntimeError), trace() as t:
        model = Normalized().to("meta")
        model(images)
    buffer = next(a for a in t.evidence.attributes.values() if a.name == "std")
    for op in t.ops[:-1]:  # what ids reused by buffers look like: here every CPU tensor's
        t.evidence.attributes[op.outputs[0].tensor_id] = buffer
    d = t.diagnostics[0]
    assert d.kind == "device-mismatch"
    assert "`x` (2, 3, 8, 8) is on cpu" in d.message and "while the model is on meta" in d.message, d.message
