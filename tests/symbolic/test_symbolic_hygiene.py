"""The symbolic pass leaves no trace behind: the user's model, random state, output, other tracers."""

from __future__ import annotations

import dataclasses
import gc
import logging
import random
import warnings
import weakref

import numpy as np
import pytest
import torch
from torch import nn

import shapetrace
from shapetrace._private import module_calls, torch_api
from shapetrace.symbolic.listener import ArgumentKeeper


class Stateful(nn.Module):
    """Batch norm in training mode (running stats, a counter), random draws (torch's, Python's,
    numpy's), a print, a log record and a warning."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(4)
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        print("forward ran")
        logging.getLogger("stateful").warning("forward logged")
        warnings.warn("forward warned", stacklevel=1)
        scale = random.random() + float(np.random.rand())
        return self.lin(self.norm(x)) * scale + torch.randn_like(x)


def test_model_random_state_and_output_are_untouched(capsys, caplog):
    model = Stateful().train()
    x = torch.rand(6, 4)
    with pytest.warns(UserWarning, match="forward warned"), shapetrace.trace(model, dims="B D") as t:
        model(x)
    assert capsys.readouterr().out == "forward ran\n" and caplog.messages == ["forward logged"]
    params = {name: (p, p.detach().clone()) for name, p in model.named_parameters()}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    rng, python_rng, numpy_rng = torch.get_rng_state(), random.getstate(), np.random.get_state()

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        # batch norm fixes D to 4: the Linear's 4 outputs are D by value only
        assert t.ops[-1].outputs[0].expr == "(B, D?)" and t.symbolic.state == "ran"  # runs the pass

    assert capsys.readouterr().out == "" and caplog.messages == ["forward logged"] and shown == []
    for name, (param, value) in params.items():
        assert dict(model.named_parameters())[name] is param and torch.equal(param, value)
    for name, value in buffers.items():  # running stats and num_batches_tracked not moved
        assert torch.equal(dict(model.named_buffers())[name], value)
    assert torch.equal(torch.get_rng_state(), rng) and random.getstate() == python_rng
    assert (np.random.get_state()[1] == numpy_rng[1]).all()
    assert model.training


def test_reading_inside_another_trace_records_nothing_there():
    model, x = nn.Linear(4, 3), torch.rand(2, 4)
    with shapetrace.trace(model, dims="B D") as t:
        model(x)
    hooks = module_calls.global_module_hook_counts()
    with shapetrace.trace() as outer:
        assert t.ops[0].outputs[0].expr == "(B, 3)"
        assert torch_api.torch_function_mode_depth() == 1  # the outer recorder, back in place
    assert len(outer) == 0 and outer.modules == []
    assert module_calls.global_module_hook_counts() == hooks
    assert torch_api.torch_function_mode_depth() == 0


def test_the_pass_runs_once_and_only_when_read():
    from shapetrace.symbolic import engine

    calls = []
    original = engine.run_pass
    model, x = nn.Linear(4, 3), torch.rand(2, 4)
    try:
        engine.run_pass = lambda job, progress=None: calls.append(job) or original(job, progress)
        with shapetrace.trace(model, dims="B D") as t:
            model(x)
        assert calls == [] and len(t) == 1
        t.ops, t.modules, t.dims, t.to_dict()
        assert len(calls) == 1
    finally:
        engine.run_pass = original


def test_symbolic_off_keeps_concrete_shapes_and_records_no_arguments(monkeypatch):
    kept = []
    monkeypatch.setattr(ArgumentKeeper, "top_op", lambda self, *a: kept.append(a))
    monkeypatch.setattr(ArgumentKeeper, "root_entered", lambda self, *a: kept.append(a))
    model, x = nn.Linear(4, 3), torch.rand(2, 4)
    with shapetrace.trace(model, dims="B D", symbolic=False) as t:
        model(x)
        x.sum()
    assert t.symbolic.state == "skipped" and t.ops[0].outputs[0].expr is None
    assert kept == []


@dataclasses.dataclass
class Batch:
    images: torch.Tensor
    scale: float


class TakesABatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, batch: Batch) -> torch.Tensor:
        B, C, H, W = batch.images.shape
        return self.conv(batch.images).view(B, -1, H * W) * batch.scale


def test_tensors_inside_an_object_argument_are_not_kept_alive_and_still_replayed():
    model = TakesABatch()
    batch = Batch(torch.rand(2, 3, 16, 16), 0.5)
    with shapetrace.trace(model) as t:
        model(batch)
    images = weakref.ref(batch.images)
    del batch
    gc.collect()
    assert images() is None  # the trace kept the argument's metadata, not its tensor
    assert t.ops[0].op == "conv2d" and t.ops[0].outputs[0].shape == (2, 8, 16, 16)
    batch_dim, channels, pixels = t.ops[1].outputs[0].expr.strip("()").split(", ")
    assert t.symbolic.state == "ran" and channels == "8"
    assert not batch_dim.isdigit() and "*" in pixels  # replayed on fakes: sizes stay symbolic


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        return x + torch.relu(self.lin(x))


def test_the_pass_frees_its_own_objects_without_the_collector(monkeypatch):
    """The replay's recorder, effect guard, fake run and the pass's state form no reference cycles:
    reference counting frees them when the pass ends, and the collection the pass ends with
    (``long_lived(garbage=True)``) has only torch's and sympy's own young objects to scan."""
    from shapetrace.symbolic import bridge, effects, engine

    made: list[weakref.ref] = []
    for cls in (engine._Replay, bridge.ReplayRecorder, bridge.FakeRun, effects.EffectGuard):
        monkeypatch.setattr(cls, "__init__", _noting(cls.__init__, made))
    model = nn.Sequential(Residual(), Residual(), Residual())  # identical blocks: spliced from a twin
    with shapetrace.trace(model, dims="B D") as t:
        model(torch.rand(4, 8))
    enabled = gc.isenabled()
    gc.disable()  # no collection runs during the pass: only reference counting frees
    try:
        assert t.symbolic.state == "ran" and t.symbolic.reused_calls >= 1
        alive = {type(ref()).__name__ for ref in made if ref() is not None}
    finally:
        if enabled:
            gc.enable()
    assert alive == set()
    assert len(made) >= 4  # each kind was made, and freed


def _noting(init, made):
    def noted(self, *args, **kwargs):
        made.append(weakref.ref(self))
        init(self, *args, **kwargs)

    return noted


def test_a_pass_keeps_no_fake_mode_alive():
    """What the carried ops keep per fake mode (their blank tensors, which hold the mode) dies with
    the mode: a loop of traces does not keep one mode, its ShapeEnv and fakes, per pass."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    def modes() -> int:
        gc.collect()
        return sum(isinstance(each, FakeTensorMode) for each in gc.get_objects())

    model, x = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 3)), torch.rand(4, 8)
    before = modes()
    for _ in range(3):
        with torch.no_grad(), shapetrace.trace(model, dims="B D") as t:  # outputs without grad: blanks
            model(x)
        assert t.symbolic.state == "ran" and t.ops[-1].outputs[0].expr == "(B, 3)"
        del t
    assert modes() == before


def test_what_the_pass_installs_is_put_back():
    import logging
    import sys
    import warnings

    model, x = nn.Linear(4, 3), torch.rand(2, 4)
    with shapetrace.trace(model, dims="B D") as t:
        model(x)
    before = (nn.Module.__call__, sys.stdout, sys.stderr, warnings.showwarning, logging.Logger.isEnabledFor,
              logging.Logger.handle, sys.getprofile())  # fmt: skip
    assert t.symbolic.state == "ran"
    after = (nn.Module.__call__, sys.stdout, sys.stderr, warnings.showwarning, logging.Logger.isEnabledFor,
             logging.Logger.handle, sys.getprofile())  # fmt: skip
    assert after == before


def test_torch_dynamo_is_imported_only_for_a_pass_with_names(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "names.py"
    script.write_text(
        "import sys, torch, shapetrace\n"
        "with shapetrace.trace() as t:\n"
        "    torch.rand(2, 3).sum()\n"
        "print(t.symbolic.state, 'torch._dynamo' in sys.modules)\n"
        "B = 2\n"
        "with shapetrace.trace() as t:\n"
        "    torch.rand(B, 3).sum()\n"
        "print(t.symbolic.state, 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["skipped False", "ran True"]


def test_passes_in_two_threads_at_once_leave_nothing_behind(capsys):
    import logging
    import sys
    import threading
    import time
    import warnings

    from torch._subclasses.fake_tensor import FakeTensor

    class Slow(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x):
            if isinstance(x, FakeTensor):
                time.sleep(0.3)  # both replays overlap here
            print("forward")
            return self.lin(x)

    traces = []
    for _ in range(2):
        model = Slow()
        with shapetrace.trace(model, dims="B D") as t:
            model(torch.rand(2, 4))
        traces.append(t)
    capsys.readouterr()
    before = (nn.Module.__call__, sys.stdout, sys.stderr, warnings.showwarning, logging.Logger.isEnabledFor,
              logging.Logger.handle, dict(nn.modules.module._global_forward_pre_hooks))  # fmt: skip
    states = []
    threads = [threading.Thread(target=lambda t=t: states.append(t.symbolic.state)) for t in traces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert states == ["ran", "ran"]
    after = (nn.Module.__call__, sys.stdout, sys.stderr, warnings.showwarning, logging.Logger.isEnabledFor,
             logging.Logger.handle, dict(nn.modules.module._global_forward_pre_hooks))  # fmt: skip
    assert after == before and capsys.readouterr().out == ""
