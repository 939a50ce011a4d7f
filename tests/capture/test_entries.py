"""The recorder's entries: raw tuples the garbage collector stops tracking, read as named entries."""

from __future__ import annotations

import gc

import pytest
import torch
from torch import nn

import shapetrace
from shapetrace.capture.records import CallEntry, OpEntry, TensorEntry


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(8)
        self.mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))

    def forward(self, x: torch.Tensor, *, scale: torch.Tensor) -> torch.Tensor:
        h = self.mlp(self.norm(x)) * scale   # (B, 8)
        a, b = h.chunk(2, dim=-1)            # (B, 4) each
        return torch.cat([b, a], dim=-1) + x  # (B, 8)


def tracked_objects() -> int:
    gc.collect()
    gc.collect()  # an entry is untracked by the collection after the one that untracks its shapes
    return len(gc.get_objects())


def test_a_long_trace_leaves_nothing_for_the_collector_to_rescan():
    model, x, scale = Block(), torch.rand(2, 8), torch.rand(8)
    with torch.no_grad(), shapetrace.trace(model, symbolic=False) as t:
        model(x, scale=scale)  # the first call fills the per-trace caches
        before, ops_before = tracked_objects(), len(t.recording.ops)
        for _ in range(300):
            model(x, scale=scale)
        grown, ops = tracked_objects() - before, len(t.recording.ops) - ops_before
    assert ops == 300 * ops_before
    assert grown < 0.02 * ops  # named tuples held ~9 tracked objects per op
    raw = [*t.recording.ops.raw, *t.recording.modules.raw]
    assert not any(gc.is_tracked(entry) for entry in raw)


def test_entries_read_by_name_hold_what_the_tensors_had():
    model, x, scale = Block(), torch.rand(2, 8), torch.rand(8, requires_grad=True)
    with torch.no_grad(), shapetrace.trace(model, symbolic=False) as t:
        model(x, scale=scale)
    ops, calls = list(t.recording.ops), list(t.recording.modules)
    assert all(type(op) is OpEntry for op in ops) and all(type(call) is CallEntry for call in calls)
    assert [op.func for op in ops] == [
        torch.nn.functional.layer_norm, torch.nn.functional.linear, torch.nn.functional.gelu,
        torch.nn.functional.linear, torch.Tensor.mul, torch.Tensor.chunk, torch.cat, torch.Tensor.add,
    ]  # fmt: skip
    norm = ops[0]
    assert norm.inputs[0] == TensorEntry((2, 8), torch.float32, torch.device("cpu"), False, id(x), "")
    assert [entry.shape for entry in norm.inputs] == [(2, 8), (8,), (8,)]  # x, the weight, the bias
    assert type(norm.inputs[0].shape) is tuple
    assert ops[1].inputs[0].tensor_id == norm.outputs[0].tensor_id  # the last output, read the fast way
    mul = ops[4]
    assert mul.inputs[1] == TensorEntry((8,), torch.float32, torch.device("cpu"), True, id(scale), "")
    assert [(e.shape, e.path) for e in ops[5].outputs] == [((2, 4), "[0]"), ((2, 4), "[1]")]
    assert [e.shape for e in ops[6].inputs] == [(2, 4), (2, 4)]  # the tensors inside cat's list
    assert (ops[7].failed, ops[7].module_index, ops[7].lasti > 0) == (False, 0, True)
    root, norm_call = calls[0], calls[1]
    assert (root.path, root.type, root.call, root.parent, root.depth) == ("", "Block", 1, None, 0)
    assert (root.first_op, root.end_op, root.failed) == (0, 8, False)
    assert [(e.shape, e.path) for e in root.inputs] == [((2, 8), "[0]"), ((8,), "['scale']")]  # kwargs at exit
    assert root.outputs[0].tensor_id == ops[7].outputs[0].tensor_id
    assert (norm_call.path, norm_call.parent, norm_call.depth, norm_call.first_op, norm_call.end_op) == ("norm", 0, 1, 0, 1)


def test_a_call_whose_input_is_the_last_ops_output_holds_that_tensors_entry():
    model, x = Block(), torch.rand(2, 8)
    with shapetrace.trace(model, symbolic=False) as t:  # grad on: requires_grad differs between tensors
        h = (x * 2).requires_grad_()  # (2, 8)
        model.norm(h)  # (2, 8)
        d = h.detach()  # (2, 8)
        model.mlp(d)  # (2, 8)
        model.norm(x)  # (2, 8)
    calls = {(call.path, call.call): call for call in t.recording.modules}
    cpu = torch.device("cpu")
    assert calls["norm", 1].inputs == (TensorEntry((2, 8), torch.float32, cpu, True, id(h), "[0]"),)
    assert calls["mlp", 1].inputs == (TensorEntry((2, 8), torch.float32, cpu, False, id(d), "[0]"),)
    assert calls["mlp.0", 1].inputs == calls["mlp", 1].inputs  # the same tensor, passed on by Sequential
    assert calls["norm", 2].inputs == (TensorEntry((2, 8), torch.float32, cpu, False, id(x), "[0]"),)


def test_an_entry_read_while_tracing_is_the_entry_read_afterwards():
    model, x, scale = Block(), torch.rand(2, 8), torch.rand(8)
    with torch.no_grad(), shapetrace.trace(model, symbolic=False) as t:
        model(x, scale=scale)
        early = t.recording.ops[3]
        running = list(t.recording.ops)  # iterating reads each entry once
        model(x, scale=scale)
    assert t.recording.ops[3] is early and t.recording.ops[:8] == running
    assert [op.func for op in t.recording.ops[8:]] == [op.func for op in running]
    assert t.ops[3].op == "linear" and t.ops[11].op == "linear"


def test_a_failed_op_is_recorded_with_its_inputs_and_no_outputs():
    a, b = torch.rand(2, 3), torch.rand(4, 5)
    with pytest.raises(RuntimeError), shapetrace.trace(symbolic=False) as t:
        a @ b  # (2, 3) @ (4, 5)
    (op,) = t.recording.ops
    assert op.failed and op.outputs == () and [e.shape for e in op.inputs] == [(2, 3), (4, 5)]
    assert t.error.op_index == 0


def test_entries_written_by_an_analysis_are_read_back_as_written():
    with shapetrace.trace(symbolic=False) as t:
        y = torch.rand(3).relu()  # (3,)
    ops = t.recording.ops
    assert len(ops) == 2 and y.shape == (3,)
    replaced = ops[1]._replace(module_index=7)
    ops[1] = replaced
    ops.append(ops[0])
    assert ops[1] is replaced and ops[-1] is ops[0] and len(ops) == 3
    del ops[1:]
    assert [op.func for op in ops] == [torch.rand]


def test_values_read_from_data_are_kept_by_op_index():
    """The Python value an op reads from a tensor's data (names.VALUE_OPS) is kept for the symbolic
    pass, which replays on fake tensors that hold none."""
    from shapetrace.capture.recorder import Recorder

    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    recorder = Recorder()
    with recorder:
        positive = bool((x > 0).all())
        total = x.sum().item()
        rows = x.tolist()
        same = torch.equal(x, x.clone())
        y = x * 2  # a tensor result: no value kept
    names = [op.func.__name__ for op in recorder.ops]
    kept = {names[index]: value for index, value in recorder.values.items()}
    assert kept == {"__bool__": positive, "item": total, "equal": same}  # a list of data is not kept
    assert positive is True and total == 10.0 and rows == [[1.0, 2.0], [3.0, 4.0]] and same is True
    assert y.shape == (2, 2)


def test_entries_recorded_under_a_maker_are_renamed_to_the_op():
    """The symbolic replay records an op it answers itself under the maker of its outputs, then
    renames it: the entry names the op, and the recording keeps no maker (nor what it holds)."""
    from shapetrace.capture.records import OpEntries

    ops = OpEntries()
    held = torch.rand(2)

    def made(*args):
        return held

    ops.raw.append((ops.number(made), None, None, -1, False, 0))
    ops.rename(made, torch.relu)
    assert ops[0].func is torch.relu and made not in ops.numbers and made not in ops.funcs
    ops.rename(made, torch.tanh)  # a maker never recorded: nothing changes
    assert ops[0].func is torch.relu
