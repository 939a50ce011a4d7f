"""A trace leaves nothing behind, changes no result, keeps no tensor alive, and loses nothing
when the forward fails."""

from __future__ import annotations

import gc
import io
import sys
import weakref

import pytest
import torch
from capture_support import assert_nothing_installed, module_hook_state
from rich.console import Console
from torch import nn

import shapetrace
from shapetrace._private.torch_api import torch_function_mode_depth


class Block(nn.Module):
    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.proj(self.norm(x)))       # (B, N, D)


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(32, 4)  # should be 16 -> 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc1(x).relu()                              # (B, 16)
        return self.fc2(x)                                  # fails: 16 != 32


def test_nothing_is_left_installed_after_a_normal_exit():
    model = Block()
    before = module_hook_state(model)
    x = torch.rand(2, 5, 16)
    with shapetrace.trace(model):
        assert torch_function_mode_depth() == 1
        model(x)
    assert_nothing_installed(model, before)
    with shapetrace.trace():
        model(x)
    assert_nothing_installed(model, before)


def test_nested_traces_both_record_and_leave_nothing_installed_whichever_ends_first():
    model, x = Block(), torch.rand(2, 5, 16)
    before = module_hook_state(model)
    with shapetrace.trace(model) as outer:
        with shapetrace.trace(model) as inner:
            model(x)
        model(x)
    assert [m.path for m in inner.modules] == ["", "norm", "proj", "drop"]
    assert [m.path for m in outer.modules] == ["", "norm", "proj", "drop"] * 2
    assert_nothing_installed(model, before)
    first, second = shapetrace.trace(model), shapetrace.trace()
    first_trace, second_trace = first.__enter__(), second.__enter__()
    model(x)
    first.__exit__(None, None, None)  # out of order: the first to start ends first
    model(x)
    second.__exit__(None, None, None)
    assert len(first_trace.modules) == 4 and len(second_trace.modules) == 8  # module calls: each its own
    assert_nothing_installed(model, before)


def test_failing_forward_keeps_the_trace_up_to_the_failure_and_the_exception_unchanged():
    model = Broken()
    before = module_hook_state(model)
    x = torch.rand(2, 8)
    with pytest.raises(RuntimeError) as caught:
        model(x)
    expected_message = str(caught.value)
    with pytest.raises(RuntimeError) as caught, shapetrace.trace(model) as t:
        model(x)
    assert type(caught.value) is RuntimeError and str(caught.value) == expected_message
    assert_nothing_installed(model, before)
    assert [(op.op, op.module, op.failed) for op in t.ops] == [
        ("linear", "fc1", False),
        ("relu", "", False),
        ("linear", "fc2", True),
    ]
    assert t.error.type == "RuntimeError" and t.error.message == expected_message
    assert t.error.op_index == 2 and t.failing_op() is t.ops[2]
    failing = t.ops[2]
    assert failing.outputs == () and [m.shape for m in failing.inputs] == [(2, 16), (4, 32), (4,)]
    assert failing.code == "return self.fc2(x)                                  # fails: 16 != 32"
    assert [(m.path, m.failed) for m in t.modules] == [("", True), ("fc1", False), ("fc2", True)]
    assert t.to_dict()["error"] == {"type": "RuntimeError", "message": expected_message, "op_index": 2}


def test_an_error_outside_any_op_is_recorded_without_an_op_index():
    x = torch.rand(3)
    with pytest.raises(ValueError, match="bad value"), shapetrace.trace() as t:
        x.sum()
        raise ValueError("bad value")
    assert t.error.type == "ValueError" and t.error.op_index is None
    assert [op.op for op in t.ops] == ["sum"]


def test_an_op_error_caught_by_the_user_does_not_end_the_trace():
    a, b = torch.rand(2, 3), torch.rand(4, 5)
    with shapetrace.trace() as t:
        try:
            a @ b
        except RuntimeError:
            pass
        a.sum()
    assert t.error is None
    assert [(op.op, op.failed) for op in t.ops] == [("@", True), ("sum", False)]


def run(model: nn.Module, x: torch.Tensor, traced: bool):
    torch.manual_seed(0)
    model.zero_grad()
    if traced:
        with shapetrace.trace(model):
            y = model(x)
            y.square().mean().backward()
    else:
        y = model(x)
        y.square().mean().backward()
    return y.detach().clone(), [p.grad.clone() for p in model.parameters()]


def test_outputs_and_gradients_are_bit_identical(examples):
    torch.manual_seed(1)
    model = Block().train()  # dropout is active: the RNG stream must be untouched too
    x = torch.rand(4, 7, 16)
    plain_y, plain_grads = run(model, x, traced=False)
    traced_y, traced_grads = run(model, x, traced=True)
    assert torch.equal(plain_y, traced_y)
    assert all(torch.equal(a, b) for a, b in zip(plain_grads, traced_grads))


def test_a_finished_trace_keeps_no_tensor_alive():
    model = Block()

    def traced_call():
        x = torch.rand(2, 3, 16)
        with shapetrace.trace(model) as t:
            y = model(x)
        return t, weakref.ref(x), weakref.ref(y)

    t, x_ref, y_ref = traced_call()
    gc.collect()
    assert x_ref() is None and y_ref() is None
    assert [op.op for op in t.ops] == ["layer_norm", "linear", "dropout", "+"]


def test_a_trace_keeps_the_model_until_first_read_or_with_hold_modules_false_not_at_all():
    def traced_call(**options):
        model, x = Block(), torch.rand(2, 3, 16)
        with shapetrace.trace(model, dims="B T D", **options) as t:
            model(x)
        return t, weakref.ref(model), weakref.ref(model.proj.weight)

    held, model_ref, _ = traced_call()
    gc.collect()
    assert model_ref() is not None  # the pass has not run yet: it needs the model
    assert held.ops[-1].outputs[0].expr.startswith("(B, T, ") and held.summary.parameters == 2 * 16 + 16 * 16 + 16
    gc.collect()
    assert model_ref() is None  # read: let go (and nothing of the pass keeps it)
    assert held.summary.parameters == 2 * 16 + 16 * 16 + 16 and held.diagnostics == []

    t, model_ref, weight_ref = traced_call(hold_modules=False)
    gc.collect()
    assert model_ref() is None and weight_ref() is None  # nothing read yet, nothing kept
    assert [op.op for op in t.ops] == ["layer_norm", "linear", "dropout", "+"]  # the records stand
    assert t.ops[-1].outputs[0].shape == (2, 3, 16) and t.ops[-1].outputs[0].expr is None
    assert t.symbolic.state == "skipped" and "freed before the trace was read" in t.symbolic.reason
    assert t.summary.freed and t.summary.parameters is None
    out = io.StringIO()
    t.print(Console(file=out, width=200))
    assert "symbolic shapes skipped (the traced model was freed before the trace was read" in out.getvalue()
    out = io.StringIO()
    Console(file=out, width=200).print(t.tree())
    assert "parameters unknown: the model was freed before the trace was read" in out.getvalue()


def test_a_failed_trace_keeps_no_tensor_alive():
    model = Broken()

    def traced_call():
        x = torch.rand(2, 8)
        try:
            with shapetrace.trace(model) as t:
                model(x)
        except RuntimeError:
            pass
        return t, weakref.ref(x)

    t, x_ref = traced_call()
    gc.collect()
    assert x_ref() is None
    assert t.error is not None


def test_records_hold_metadata_only():
    model = Block()
    x = torch.rand(2, 3, 16)
    with shapetrace.trace(model) as t:
        model(x)

    def walk(value, seen=None):
        seen = seen if seen is not None else set()
        if id(value) in seen:
            return
        seen.add(id(value))
        assert not isinstance(value, (torch.Tensor, nn.Module)), value
        children = vars(value).values() if hasattr(value, "__dataclass_fields__") else ()
        if isinstance(value, (list, tuple)):
            children = value
        for child in children:
            walk(child, seen)

    walk(t.ops)
    walk(t.modules)


def test_a_failure_of_ours_at_exit_leaves_nothing_installed_and_the_users_error_intact(monkeypatch):
    trace_module = sys.modules["shapetrace.trace"]  # the package's `trace` attribute is the class

    def broken(*arguments):
        raise KeyError("a bug in shapetrace")

    monkeypatch.setattr(trace_module, "collect_evidence", broken)
    model = Broken()
    before = module_hook_state(model)
    x = torch.rand(2, 8)
    with (
        pytest.warns(RuntimeWarning, match="could not finish this trace .KeyError"),
        pytest.raises(RuntimeError, match="mat1 and mat2"),
        shapetrace.trace(model) as t,
    ):
        model(x)
    assert_nothing_installed(model, before)
    assert [op.op for op in t.ops] == ["linear", "relu", "linear"]


def test_gc_paused_re_enables_the_collector_even_when_building_fails():
    from shapetrace.capture.collector import gc_paused

    assert gc.isenabled()
    try:
        with pytest.raises(ValueError, match="building failed"), gc_paused():
            assert not gc.isenabled()
            raise ValueError("building failed")
        assert gc.isenabled()
        gc.disable()  # a caller that paused it itself gets it back paused
        with pytest.raises(ValueError), gc_paused():
            raise ValueError("building failed")
        assert not gc.isenabled()
    finally:
        gc.enable()



class _Node:
    """An object that can be part of a reference cycle."""


def test_long_lived_moves_what_a_block_keeps_to_the_oldest_generation_and_collects_its_garbage():
    """long_lived(garbage=True) (the symbolic pass): no collection while the block runs, one young
    collection after it that frees the block's cyclic garbage, and what the block keeps goes to
    the oldest generation without a full collection; nothing stays frozen, the collector is on."""
    from shapetrace.capture.collector import long_lived

    collections = []

    def heard(phase, info):
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(heard)
    try:
        with long_lived(garbage=True):
            collections.append("block")
            assert not gc.isenabled()
            kept = [_Node() for _ in range(10_000)]  # many allocations: no collection while paused
            garbage = _Node()
            garbage.cycle = garbage
            garbage_alive = weakref.ref(garbage)
            del garbage
    finally:
        gc.callbacks.remove(heard)
    assert collections == [1, "block", 0]
    assert garbage_alive() is None
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(node) in oldest for node in kept)
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_long_lived_keeps_a_paused_collector_paused_and_frozen_objects_frozen():
    from shapetrace.capture.collector import long_lived

    gc.disable()
    try:
        with long_lived(garbage=True):
            kept = _Node()
        assert not gc.isenabled() and gc.get_freeze_count() == 0  # nothing moved
        gc.enable()
        gc.freeze()  # a process that froze its objects (the command does): the block's join them
        before = gc.get_freeze_count()
        with long_lived(garbage=True):
            kept = [_Node() for _ in range(100)]
        assert gc.get_freeze_count() >= before + len(kept) and gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()
