"""The symbolic pass re-runs ``forward`` on fake tensors, and nothing of that run reaches the
program: each model below is run by a small program untraced, then traced with the pass run, and
what the program is left with (its files, its state, its outputs, what it printed) must be the same.
Where a forward would write or mutate, the pass stops for that call and says what and where."""

from __future__ import annotations

import json
import logging
import pickle

import pytest
import torch
from torch import nn

import shapetrace

LOG: list = []  # a global the forwards below append to
CACHE: dict = {}
CALLS = 0


def line_of(marker: str) -> int:
    """The line of this file holding ``# <marker>``."""
    with open(__file__) as source:
        return next(n for n, text in enumerate(source, 1) if text.rstrip().endswith(f"# {marker}"))


class Base(nn.Module):
    def __init__(self, folder) -> None:
        super().__init__()
        self.folder = folder
        self.lin = nn.Linear(6, 3)


class WritesLog(Base):
    def forward(self, x):
        h = self.lin(x)
        with open(self.folder / "log.txt", "a") as log:  # effect: open
            log.write(f"{tuple(h.shape)}\n")
        return h.relu()


class SavesCheckpoint(Base):
    def forward(self, x):
        h = self.lin(x)
        torch.save({"h": h, "weight": self.lin.weight}, self.folder / "checkpoint.pt")  # effect: save
        return h.relu()


class AppendsToGlobal(Base):
    def forward(self, x):
        h = self.lin(x)
        LOG.append(h.sum().item())  # effect: global append
        return h.relu()


class AppendsToAttribute(Base):
    def __init__(self, folder) -> None:
        super().__init__(folder)
        self.history = []

    def forward(self, x):
        h = self.lin(x)
        self.history.append(h.shape)  # effect: attribute append
        return h.relu()


class SetsAttribute(Base):
    def forward(self, x):
        h = self.lin(x)
        self.last = h.detach()  # effect: setattr
        return h.relu()


class CountsGlobally(Base):
    def forward(self, x):
        global CALLS
        h = self.lin(x)
        CALLS += 1
        CACHE[CALLS] = h.shape
        return h.relu()


class WritesOpenFile(Base):
    """Writes to a file it opened in __init__ (no `open` in forward), as JSON."""

    def __init__(self, folder) -> None:
        super().__init__(folder)
        self.stream = open(folder / "stream.jsonl", "a")  # noqa: SIM115 (closed by the program)

    def forward(self, x):
        h = self.lin(x)
        json.dump({"shape": list(h.shape)}, self.stream)  # effect: json
        return h.relu()


class PrintsAndLogs(Base):
    def forward(self, x):
        h = self.lin(x)
        print("hidden", tuple(h.shape))
        logging.getLogger("effects").warning("hidden %s", tuple(h.shape))
        return h.relu()


class Child(nn.Module):
    def __init__(self, folder) -> None:
        super().__init__()
        self.folder = folder

    def forward(self, h):
        with open(self.folder / "log.txt", "a") as log:  # effect: child open
            log.write(f"{tuple(h.shape)}\n")
        return h


class ChildWritesLog(Base):
    """The effect in a submodule's forward."""

    def __init__(self, folder) -> None:
        super().__init__(folder)
        self.child = Child(folder)

    def forward(self, x):
        return self.child(self.lin(x)).relu()


class HookAppendsToGlobal(Base):
    """The effect in a forward hook of a submodule (torch calls it after the global hooks)."""

    def __init__(self, folder) -> None:
        super().__init__(folder)
        self.lin.register_forward_hook(self.remember)

    def remember(self, module, args, output):
        LOG.append(tuple(output.shape))  # effect: hook append

    def forward(self, x):
        return self.lin(x).relu()


class PreHookWritesLog(Base):
    """The effect in a forward pre-hook of a submodule."""

    def __init__(self, folder) -> None:
        super().__init__(folder)
        self.lin.register_forward_pre_hook(self.note)

    def note(self, module, args):
        with open(self.folder / "log.txt", "a") as log:  # effect: pre-hook open
            log.write(f"{tuple(args[0].shape)}\n")

    def forward(self, x):
        return self.lin(x.relu())


def program(model_type, folder, traced: bool):
    """Build a model, call it (traced or not), call it again; return what it left behind."""
    global CALLS
    LOG.clear()
    CACHE.clear()
    CALLS = 0
    torch.manual_seed(0)
    model = model_type(folder)
    x = torch.rand(4, 6)
    trace = None
    if traced:
        with shapetrace.trace(model, dims="B D") as trace:
            first = model(x)
        assert trace.symbolic.state in ("ran", "partial", "failed")  # the pass runs here
    else:
        first = model(x)
    second = model(x)
    stream = getattr(model, "stream", None)
    if stream is not None:
        stream.close()
    state = {
        "LOG": list(LOG), "CACHE": dict(CACHE), "CALLS": CALLS,
        "history": list(getattr(model, "history", [])),
        "attributes": sorted(model.__dict__),
        "last": getattr(model, "last", None),
        "parameters": {name: (type(p), p.detach().clone()) for name, p in model.named_parameters()},
    }  # fmt: skip
    files = {path.name: path.read_bytes() for path in sorted(folder.iterdir())}
    return (first, second), state, files, trace


def same_state(a: dict, b: dict) -> bool:
    return pickle.dumps({k: v for k, v in a.items() if k not in ("last", "parameters")}) == pickle.dumps(
        {k: v for k, v in b.items() if k not in ("last", "parameters")}
    ) and all(type(p) is type(q) and torch.equal(p, q) for (_, p), (_, q) in zip(a["parameters"].values(),
                                                                                     b["parameters"].values())) and (
        (a["last"] is None) == (b["last"] is None)
    ) and (a["last"] is None or (type(b["last"]) is torch.Tensor and torch.equal(a["last"], b["last"])))  # fmt: skip


@pytest.mark.parametrize(
    "model_type, effect, marker",
    [
        (WritesLog, "forward opens a file for writing", "effect: open"),
        (SavesCheckpoint, "forward saves with torch.save", "effect: save"),
        (AppendsToGlobal, "forward changes global LOG of ", "effect: global append"),
        (AppendsToAttribute, "forward changes AppendsToAttribute.history (list.append)", "effect: attribute append"),
        (SetsAttribute, "forward sets `self.last`", "effect: setattr"),
        (WritesOpenFile, "forward writes to a file", "effect: json"),
        (ChildWritesLog, "forward opens a file for writing", "effect: child open"),
        (HookAppendsToGlobal, "forward changes global LOG of ", "effect: hook append"),
    ],
)
def test_a_forward_that_writes_or_mutates_leaves_the_program_as_it_was(tmp_path, model_type, effect, marker):
    untraced, traced = tmp_path / "untraced", tmp_path / "traced"
    untraced.mkdir()
    traced.mkdir()
    outputs, state, files, _ = program(model_type, untraced, traced=False)
    outputs_t, state_t, files_t, trace = program(model_type, traced, traced=True)

    assert all(torch.equal(a, b) and type(b) is torch.Tensor for a, b in zip(outputs, outputs_t))
    assert files == files_t and same_state(state, state_t)
    # the pass stopped at that line, said so, and the ops before it kept their symbolic shapes
    status = trace.symbolic
    assert status.state == "partial"
    assert effect in status.reason and f"at test_symbolic_effects.py:{line_of(marker)}" in status.reason
    assert trace.ops[0].op == "linear" and trace.ops[0].outputs[0].expr == "(B, 3)"
    assert trace.ops[-1].outputs[0].expr == "(B?, 3)"  # after the stop: concrete, named by value


def test_a_pre_hook_that_writes_leaves_the_program_as_it_was(tmp_path):
    """The replay watches a module's own hooks as it watches forward (torch's Module.__call__
    around them is not watched)."""
    untraced, traced = tmp_path / "untraced", tmp_path / "traced"
    untraced.mkdir()
    traced.mkdir()
    outputs, state, files, _ = program(PreHookWritesLog, untraced, traced=False)
    outputs_t, state_t, files_t, trace = program(PreHookWritesLog, traced, traced=True)
    assert all(torch.equal(a, b) for a, b in zip(outputs, outputs_t))
    assert files == files_t and same_state(state, state_t)
    status = trace.symbolic
    assert status.state == "partial" and "opens a file for writing" in status.reason
    assert f"at test_symbolic_effects.py:{line_of('effect: pre-hook open')}" in status.reason
    assert trace.ops[0].op == "relu" and trace.ops[0].outputs[0].expr == "(B, D)"


def test_a_checkpoint_saved_in_forward_still_loads(tmp_path):
    _, _, files, trace = program(SavesCheckpoint, tmp_path, traced=True)
    loaded = torch.load(tmp_path / "checkpoint.pt")
    assert loaded["h"].shape == (4, 3) and type(loaded["weight"]) is nn.Parameter
    assert "torch.save" in trace.symbolic.reason


def test_writes_that_are_not_calls_are_found_after_the_call_and_undone(tmp_path):
    untraced, traced = tmp_path / "untraced", tmp_path / "traced"
    untraced.mkdir()
    traced.mkdir()
    _, state, _, _ = program(CountsGlobally, untraced, traced=False)
    _, state_t, _, trace = program(CountsGlobally, traced, traced=True)
    assert state == state_t | {"parameters": state["parameters"]} and state_t["CALLS"] == 2
    status = trace.symbolic  # found after the call: none of its shapes is symbolic
    assert status.state == "failed" and "found after the call, and undone" in status.reason
    assert "global CALLS" in status.reason or "global CACHE" in status.reason


class Memo(nn.Module):
    """Writes by subscript into containers held by a submodule: an empty dict, and an empty list
    inside a dict (no call the replay could stop: found after the call)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict = {}
        self.memo: dict = {"shapes": [], "hits": 0}

    def forward(self, x):
        self.memo["shapes"] += [tuple(x.shape)]
        self.seen[x.shape[0]] = True
        return x.relu()


class HoldsMemo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 3)
        self.memo = Memo()

    def forward(self, x):
        return self.memo(self.lin(x))


def test_writes_into_a_submodules_empty_containers_are_found_named_and_undone():
    model = HoldsMemo()
    with shapetrace.trace(model, dims="B D") as trace:
        model(torch.rand(4, 6))
    assert model.memo.seen == {4: True} and model.memo.memo == {"shapes": [(4, 3)], "hits": 0}  # the traced run's
    status = trace.symbolic  # the linear before the writes kept its symbolic shapes
    assert status.state == "partial" and "found after the call, and undone" in status.reason
    assert "Memo.seen" in status.reason or "Memo.memo['shapes']" in status.reason, status.reason


def test_prints_and_log_records_of_the_replay_are_dropped(tmp_path, capsys, caplog):
    outputs, _, _, trace = program(PrintsAndLogs, tmp_path, traced=True)
    assert capsys.readouterr().out == "hidden (4, 3)\nhidden (4, 3)\n"  # the program's two calls, not the replay's
    assert caplog.messages == ["hidden (4, 3)", "hidden (4, 3)"]
    assert trace.symbolic.state == "ran" and trace.ops[-1].outputs[0].expr == "(B, 3)"


def test_other_threads_print_while_a_pass_runs(capsys):
    """Only the pass's thread is silenced: a thread that prints during the pass is heard."""
    import threading

    from torch._subclasses.fake_tensor import FakeTensor

    class Signal(nn.Module):
        def forward(self, x):
            if isinstance(x, FakeTensor):  # in the replay: another thread prints meanwhile
                other = threading.Thread(target=print, args=("from another thread",))
                other.start()
                other.join()
            print("from the forward")
            return x * 2

    model = Signal()
    with shapetrace.trace(model, dims="B D") as t:
        model(torch.rand(2, 2))
    assert t.symbolic.state == "ran"
    assert capsys.readouterr().out == "from the forward\nfrom another thread\n"


# --- TorchScript, lazy, compiled and quantised modules -----------------------------------------------


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 3)
        self.norm = nn.BatchNorm1d(3)

    def forward(self, x):
        return self.norm(self.lin(x)).relu()


@pytest.mark.parametrize("compile_with", [torch.jit.script, lambda m: torch.jit.trace(m, torch.rand(4, 6))])
def test_torchscript_modules_are_not_replayed_and_keep_their_weights(compile_with):
    torch.manual_seed(0)
    model = compile_with(Small().train())
    x = torch.rand(4, 6)
    weights = {name: p for name, p in model.named_parameters()}
    with shapetrace.trace(model, dims="B D") as t:
        first = model(x)
    status = t.symbolic
    assert len(t) == 0  # TorchScript's interpreter runs the ops: the trace sees the call only
    assert [note for note in status.notes if "is a TorchScript module" in note and "does not enter" in note]
    again = model(x)
    assert type(again) is torch.Tensor and first.shape == again.shape
    assert {name: p for name, p in model.named_parameters()} == weights
    assert all(type(p) is nn.Parameter or type(p) is torch.Tensor for p in model.parameters())


def test_a_torchscript_submodule_stops_the_replay_there():
    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pre = nn.Linear(6, 6)
            self.inner = torch.jit.script(Small().train())

        def forward(self, x):
            return self.inner(self.pre(x))  # scripted

    torch.manual_seed(0)
    model = Outer()
    with shapetrace.trace(model, dims="B D") as t:
        model(torch.rand(4, 6))
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    assert next(op for op in t.ops if op.op == "linear").outputs[0].expr == "(B, D?)"  # D fixed to 6 before
    (note,) = t.symbolic.notes  # every op was replayed (TorchScript's ops are not recorded): a note says it
    assert "calls TorchScript module" in note and f"test_symbolic_effects.py:{line_of('scripted')}" in note
    assert all(torch.equal(b, buffers[name]) for name, b in model.named_buffers())  # BN stats not moved


def test_lazy_modules_trace_and_stay_initialised_with_real_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(2))
    with shapetrace.trace(model, dims="B D") as t:
        pass
    assert t.summary.parameters is None and t.summary.uninitialised == 4
    x = torch.rand(3, 5)
    with shapetrace.trace(model, dims="B D") as t:
        y = model(x)
    assert t.summary.parameters == 5 * 4 + 4 + 4 * 2 + 2  # counted once initialised
    assert t.symbolic.state == "ran" and t.ops[-1].outputs[0].expr == "(B, 2)"
    assert type(model[0]) is nn.Linear and all(type(p) is nn.Parameter for p in model.parameters())
    assert torch.equal(model(x), y)


def test_a_module_compiled_after_the_trace_is_replayed_without_compiling():
    dynamo = pytest.importorskip("torch._dynamo")
    torch.manual_seed(0)
    model = Small().eval()
    x = torch.rand(4, 6)
    with shapetrace.trace(model, dims="B D") as t:
        expected = model(x)
    model.compile(backend="eager")  # sets a compiled call on the module itself
    wrapper = torch.compile(model, backend="eager")
    frames = dict(dynamo.utils.counters["frames"])
    assert t.symbolic.state == "ran" and t.ops[-1].outputs[0].expr == "(B, 3)"
    assert dict(dynamo.utils.counters["frames"]) == frames  # nothing was compiled by the pass
    assert torch.equal(wrapper(x), expected)


def test_a_call_of_a_compiled_function_is_stopped_before_it_compiles():
    dynamo = pytest.importorskip("torch._dynamo")
    from shapetrace.symbolic.effects import EffectGuard, StopReplay

    scale = torch.compile(lambda h: h * 2, backend="eager")
    guard = EffectGuard([])
    frames = dict(dynamo.utils.counters["frames"])
    with pytest.raises(StopReplay, match="calls a torch.compile'd function"), guard.watching():
        scale(torch.ones(2))  # compiled
    assert guard.effect.line == line_of("compiled")
    assert dict(dynamo.utils.counters["frames"]) == frames


def test_a_quantised_model_is_left_as_it_was():
    model = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)),
                                                  {nn.Linear}, dtype=torch.qint8)  # fmt: skip
    x = torch.rand(4, 6)
    expected = model(x)
    state = {k: v for k, v in model.state_dict().items()}
    with shapetrace.trace(model, dims="B D") as t:
        model(x)
    assert t.symbolic.state in ("ran", "partial", "failed")
    assert torch.equal(model(x), expected)
    after = model.state_dict()
    assert state.keys() == after.keys()
    assert all(type(after[k]) is type(v) for k, v in state.items())
