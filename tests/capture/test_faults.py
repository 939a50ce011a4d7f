"""A trace never harms the program: interrupts at any moment, other threads, compiled code,
TorchScript, nested tensors."""

from __future__ import annotations

import gc
import os
import random
import runpy
import signal
import threading
import time
import warnings
import weakref

import pytest
import torch
from capture_support import assert_nothing_installed, module_hook_state
from jaxtyping import Float
from rich.console import Console
from torch import Tensor, nn

import shapetrace
from shapetrace._private.module_calls import global_module_hook_counts


class Annotated(nn.Module):
    """A model whose forward gets a checked wrapper while traced (contracts)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: Float[Tensor, "B 8"]) -> Float[Tensor, "B 8"]:
        return self.fc(x).relu()


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread")
@pytest.mark.parametrize("with_model", [True, False])
def test_ctrl_c_at_any_moment_leaves_nothing_installed(with_model):
    """Hundreds of SIGINTs, each at a random moment of entering, running or leaving a trace."""
    random.seed(0)
    model, x = Annotated(), torch.rand(4, 8)
    before = module_hook_state(model)
    start = time.perf_counter()
    with shapetrace.trace(model if with_model else None, symbolic=False):
        model(x)
    span = time.perf_counter() - start  # how long one traced call takes
    interrupted = 0
    for _ in range(300):
        timer = threading.Timer(random.uniform(0, span * 1.5), os.kill, (os.getpid(), signal.SIGINT))
        try:
            timer.start()
            with shapetrace.trace(model if with_model else None, symbolic=False):
                model(x)
            timer.join()
        except KeyboardInterrupt:
            interrupted += 1
        finally:
            try:
                timer.join()
            except KeyboardInterrupt:
                interrupted += 1
        assert_nothing_installed(model, before)
    assert interrupted == 300  # every interrupt reached the program, none was lost


class Counter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)


def test_a_trace_records_only_the_thread_that_opened_it():
    model, x = Counter(), torch.rand(2, 4)
    barrier = threading.Barrier(2)
    traces: dict[str, shapetrace.Trace] = {}

    def traced(name: str, use_model: bool) -> None:
        barrier.wait()
        with shapetrace.trace(model if use_model else None, symbolic=False) as t:
            for _ in range(200):
                model(x)
        traces[name] = t

    threads = [threading.Thread(target=traced, args=("model", True)), threading.Thread(target=traced, args=("any", False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for t in traces.values():
        assert len(t.modules) == 400 and len(t.ops) == 200  # Counter and its Linear, 200 times each
        assert not any(call.failed for call in t.modules)
    assert set(global_module_hook_counts().values()) == {0}


def test_untraced_threads_are_not_recorded_by_a_trace_without_a_model():
    model, x = Counter(), torch.rand(2, 4)
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            model(x)

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        with shapetrace.trace(symbolic=False) as t:
            torch.rand(3).sum()
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join()
    assert [op.op for op in t.ops] == ["rand", "sum"] and t.modules == []


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_compiled_models_and_functions_run_under_a_trace_with_the_same_results(backend):
    torch._dynamo.reset()
    model, x = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), torch.rand(3, 4)
    compiled = torch.compile(model, backend=backend)
    double_sin = torch.compile(lambda a: (a * 2).sin(), backend=backend)
    with shapetrace.trace(symbolic=False) as t:
        y = compiled(x)
        z = double_sin(x)
    assert torch.equal(y, model(x)) and torch.equal(z, (x * 2).sin())
    assert t.modules[0].type == "OptimizedModule" and t.modules[0].outputs[0].shape == (3, 2)
    assert any("torch.compile" in note for note in t.notes)
    assert "note: torch.compile'd code ran" in _table_text(t)


def test_a_torchscript_module_says_that_its_ops_are_not_recorded():
    scripted, x = torch.jit.script(nn.Linear(4, 2)), torch.rand(3, 4)
    with shapetrace.trace(scripted, symbolic=False) as t:
        scripted(x)
    assert len(t.ops) == 0 and t.modules[0].outputs[0].shape == (3, 2)
    assert t.notes == ("RecursiveScriptModule is TorchScript: its ops run outside Python and are not recorded",)
    assert t.to_dict()["notes"] == list(t.notes)


def test_strided_nested_tensors_trace_with_their_ragged_dims_unknown():
    nested = torch.nested.nested_tensor([torch.rand(2, 3), torch.rand(4, 3)])
    with shapetrace.trace(symbolic=False) as t:
        doubled = nested * 2
    assert torch.equal(doubled.to_padded_tensor(0), nested.to_padded_tensor(0) * 2)
    assert t.ops[0].outputs[0].shape == (2, None, 3) and t.ops[0].outputs[0].shape_text() == "(2, *, 3)"


def _table_text(t: shapetrace.Trace) -> str:
    console = Console(width=200, record=True)
    console.print(t.table())
    return console.export_text()


def test_warnings_of_traced_ops_name_the_users_line_as_without_a_trace():
    x = torch.rand(2, 3, 4)

    def body() -> None:
        x.T  # a C++ warning (once per process in torch itself)
        torch.nn.functional.softmax(x)  # a Python warning, implicit dim
        torch.nn.functional.softmax(x)  # the same text on another line: shown again

    lines = [body.__code__.co_firstlineno + n for n in (1, 2, 3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        with shapetrace.trace(symbolic=False):
            body()
    assert [(w.filename, w.lineno) for w in caught if "deprecated" in str(w.message)][-2:] == [
        (__file__, lines[1]),
        (__file__, lines[2]),
    ]
    assert all(w.filename == __file__ for w in caught)


def test_a_script_run_again_in_one_process_warns_in_its_own_module_and_frees_the_earlier_run(tmp_path):
    script = tmp_path / "run.py"
    script.write_text("import torch\nx = torch.rand(2, 3, 4)\ny = torch.nn.functional.softmax(x)\n")
    kept = []
    for _ in range(3):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            with shapetrace.trace(symbolic=False):
                namespace = runpy.run_path(str(script))
        # each run's warning is new to its own module (a shared caller would count it in the first run's)
        assert [(w.filename, w.lineno) for w in caught if "implicit" in str(w.message).lower()] == [(str(script), 3)]
        kept.append(weakref.ref(namespace["x"]))
        del namespace
    gc.collect()
    assert [ref() is None for ref in kept[:-1]] == [True, True]  # no earlier run's globals held by a caller
