"""The compiled hot path (capture/_hotpath.c): which recorder traces use, and that the C-backed
recorder records exactly what the pure-Python one does, on every branch the C code hands over."""

from __future__ import annotations

import inspect
import os
import shutil
import sysconfig
from collections.abc import Callable

import pytest
import torch
from torch import nn

import shapetrace
from shapetrace.capture import recorder
from shapetrace.capture.recorder import Listener, Recorder

needs_compiled = pytest.mark.skipif(not recorder.HAS_COMPILED, reason="the C extension is not built")


@pytest.fixture(autouse=True)
def hot_path() -> str:
    """This module picks its recorders itself (overrides the conftest's parametrized fixture)."""
    return recorder.hot_path()


def test_traces_use_the_compiled_recorder_wherever_it_is_built():
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if not recorder.HAS_COMPILED:
        message = "traces run the pure-Python recorder: shapetrace.capture._hotpath is not built"
        if os.environ.get("CI") and shutil.which(compiler):
            pytest.fail(f"{message}, although {compiler} is here (`pip install` only warns when the build fails)")
        pytest.skip(f"{message} (no C compiler at install)")
    expected = Recorder if recorder.PURE_PYTHON else recorder.CompiledRecorder
    assert recorder.TRACE_RECORDER is expected and type(recorder.new_recorder()) is expected
    assert recorder.hot_path() == ("Python" if recorder.PURE_PYTHON else "C")


def test_tensor_metadata_has_the_getters_the_c_code_calls_directly():
    """The C code reads .shape, .dtype, .device and .requires_grad of exact tensors and parameters
    through these getset descriptors (one each, shared); if torch moves them, it falls back to
    attribute lookups: correct, but slower, and this test says so."""
    for name in ("shape", "dtype", "device", "requires_grad"):
        on_tensor = inspect.getattr_static(torch.Tensor, name)
        assert type(on_tensor).__name__ == "getset_descriptor", name
        assert inspect.getattr_static(nn.Parameter, name) is on_tensor, name


# --- the same entries on both paths --------------------------------------------------------------


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(8)
        self.mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))

    def forward(self, x: torch.Tensor, *, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.mlp(self.norm(x)) * scale        # (B, 8)
        a, b = h.chunk(2, dim=-1)                 # (B, 4) each
        return torch.cat([b, a], dim=-1) + x, a   # (B, 8), (B, 4)


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 4)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.proj(x))  # (B, 4) into Linear(8, 2): raises


def modules_keywords_and_tuples() -> tuple[nn.Module | None, Callable[[], object]]:
    model, x, scale = Block(), torch.rand(2, 8), torch.rand(8)
    return model, lambda: [model(x, scale=scale) for _ in range(2)]


def no_model_with_ops_outside_modules() -> tuple[nn.Module | None, Callable[[], object]]:
    block, x = Block(), torch.rand(2, 8)

    def run() -> object:
        y = x.softmax(-1)                             # (2, 8)
        out, _ = block(y, scale=torch.ones(8))        # (2, 8)
        return out.sum().item(), out.max(dim=-1)      # value, (values, indices)

    return None, run


def a_failing_op_inside_modules() -> tuple[nn.Module | None, Callable[[], object]]:
    model, x = Broken(), torch.rand(3, 8)
    return model, lambda: model(x)


def a_module_outside_the_model() -> tuple[nn.Module | None, Callable[[], object]]:
    model, loss, x = nn.Linear(4, 2), nn.MSELoss(), torch.rand(3, 4)
    return model, lambda: loss(model(x), torch.zeros(3, 2)).backward()


def nested_tensors() -> tuple[nn.Module | None, Callable[[], object]]:
    nested = torch.nested.nested_tensor([torch.rand(2, 3), torch.rand(4, 3)])
    return None, lambda: (nested * 2).unbind()


class Tagged(torch.Tensor):
    """A tensor subclass: the C code reads its metadata as attributes, not through Tensor's getters."""


class Scripted(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.scripted = torch.jit.script(nn.Linear(8, 8))
        self.head = nn.Linear(8, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens).as_subclass(Tagged)          # (B, T, 8), a Tagged
        x = self.scripted(x.as_subclass(torch.Tensor)) + x  # (B, T, 8)
        return self.head(x.half().float())                  # (B, T, 2)


def subclasses_parameters_and_scripted_modules() -> tuple[nn.Module | None, Callable[[], object]]:
    model, tokens = Scripted(), torch.randint(0, 10, (2, 5))
    return model, lambda: model(tokens)


SCENARIOS = [
    modules_keywords_and_tuples, no_model_with_ops_outside_modules, a_failing_op_inside_modules,
    a_module_outside_the_model, nested_tensors, subclasses_parameters_and_scripted_modules,
]  # fmt: skip


def recorded(cls: type[Recorder], scenario: Callable, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """What a trace of ``scenario`` recorded with ``cls``: its raw entries with tensor ids replaced by
    the op output that made the tensor (ids are reused as tensors die, differently on each run)."""
    monkeypatch.setattr(recorder, "TRACE_RECORDER", cls)
    model, run = scenario()
    with shapetrace.trace(model, symbolic=False) as t:
        try:
            run()
        except RuntimeError:
            pass
    outside: dict[int, str] = {}

    def label(tensor_id: int, before: int | None = None) -> str:
        found = [name for at, name in history.get(tensor_id, []) if before is None or at < before]
        return found[-1] if found else outside.setdefault(tensor_id, f"outside{len(outside)}")

    history: dict[int, list[tuple[int, str]]] = {}
    for index, op in enumerate(t.recording.ops):
        for k, out in enumerate(op.outputs):
            history.setdefault(out.tensor_id, []).append((index, f"op{index}.{k}"))
    ops = [
        (op.func, op.module_index, op.code, op.lasti, op.failed,
         [(*i[:4], label(i.tensor_id, index), i.path) for i in op.inputs],
         [(*o[:4], f"op{index}.{k}", o.path) for k, o in enumerate(op.outputs)])
        for index, op in enumerate(t.recording.ops)
    ]  # fmt: skip
    calls = [
        (c.path, c.type, c.call, c.parent, c.depth, c.first_op, c.end_op, c.failed, c.code, c.lasti,
         [(*i[:4], label(i.tensor_id, c.first_op), i.path) for i in c.inputs],
         [(*o[:4], label(o.tensor_id, c.end_op), o.path) for o in c.outputs])
        for c in t.recording.modules
    ]  # fmt: skip
    error = (t.error.type, t.error.message, t.error.op_index) if t.error else None
    return ops, calls, sorted(t.recording.indirect_calls), t.notes, error


@needs_compiled
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_both_recorders_record_the_same_entries(scenario, monkeypatch):
    python = recorded(Recorder, scenario, monkeypatch)
    compiled = recorded(recorder.CompiledRecorder, scenario, monkeypatch)
    assert python == compiled
    ops, calls, *_ = compiled
    assert ops and (calls or scenario is nested_tensors)


# --- branches the C code hands over or handles itself ------------------------------------------------


class RaisingListener(Listener):
    def op_failed(self, index: int, args: tuple, kwargs: dict | None, error: BaseException) -> None:
        raise ValueError(f"listener failed on op {index}")


@pytest.mark.parametrize("cls", [Recorder, pytest.param("C", marks=needs_compiled)])
def test_a_listener_that_raises_on_a_failed_op_raises_with_the_ops_error_as_its_context(cls):
    cls = recorder.CompiledRecorder if cls == "C" else cls
    mode, a = cls(listeners=(RaisingListener(),)), torch.ones(2, 3)
    with pytest.raises(ValueError, match="listener failed on op 0") as raised, mode:
        a @ a
    assert isinstance(raised.value.__context__, RuntimeError) and "cannot be multiplied" in str(raised.value.__context__)
    assert mode.ops[0].failed and mode.failure_index == 0 and [i.shape for i in mode.ops[0].inputs] == [(2, 3)] * 2


@needs_compiled
def test_the_compiled_recorder_records_ops_from_the_thread_that_made_it_only():
    mode = recorder.CompiledRecorder()
    with mode:
        torch.ones(2) + 1
    assert [entry.outputs[0].shape for entry in mode.ops] == [(2,), (2,)]
    mode.thread += 1  # as if another thread had made it: its module hooks ignore this one
    mode.hook_modules()
    try:
        nn.Linear(2, 2)(torch.ones(2))
    finally:
        mode.remove_hooks()
    assert len(mode.modules) == 0
