"""Watching module calls (_private/module_calls.py): torch's Module._call_impl stood in for while
someone watches, and the frames of a module call. These fail loudly when torch moves them."""

from __future__ import annotations

import sys
import threading

import pytest
import torch
from torch import nn

from shapetrace._private import module_calls


@pytest.fixture
def watched():
    """Watch module calls: the calls seen, as ("enter" | "leave", module class name, detail)."""
    seen: list[tuple] = []

    def enter(module, args):
        seen.append(("enter", type(module).__name__, len(args)))

    def leave(module, args, *kwargs_and_output):
        seen.append(("leave", type(module).__name__, len(kwargs_and_output)))

    module_calls.watch_module_calls(enter, leave)
    try:
        yield seen
    finally:
        module_calls.unwatch_module_calls(enter, leave)


def _nothing(*args) -> None:
    pass


def test_torch_calls_module_call_impl_through_the_class_attribute():
    # Module.__call__ (_wrapped_call_impl) looks up self._call_impl: standing in for it sees every call
    assert nn.Module.__call__ is nn.Module._wrapped_call_impl
    assert "_call_impl" in nn.Module.__dict__ and "self._call_impl(" in _source(nn.Module._wrapped_call_impl)


def _source(function) -> str:
    import inspect

    return inspect.getsource(function)


def test_a_watch_sees_every_call_with_torchs_hooks_run_between_enter_and_leave(watched):
    inner = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 2), inner)
    inner.register_forward_hook(lambda module, args, output: watched.append(("hook", "ReLU", 0)))
    model(torch.rand(1, 2))
    assert watched == [
        ("enter", "Sequential", 1), ("enter", "Linear", 1), ("leave", "Linear", 2),
        ("enter", "ReLU", 1), ("hook", "ReLU", 0), ("leave", "ReLU", 2), ("leave", "Sequential", 2),
    ]  # fmt: skip


def test_a_call_that_raises_leaves_with_torchs_three_arguments_and_the_error_handled(watched):
    handled = []

    def leave(module, args, *kwargs_and_output):
        handled.append((kwargs_and_output, type(sys.exc_info()[1])))

    module_calls.watch_module_calls(_nothing, leave)
    try:
        with pytest.raises(RuntimeError):
            nn.Linear(2, 2)(torch.rand(1, 3))
    finally:
        module_calls.unwatch_module_calls(_nothing, leave)
    assert handled == [((None,), RuntimeError)]


def test_torch_has_its_call_impl_back_when_no_one_watches():
    original = nn.Module._call_impl
    enter, leave = _nothing, (lambda *a: None)
    module_calls.watch_module_calls(enter, leave)
    assert nn.Module._call_impl is not original and module_calls.module_calls_watched() == 2
    module_calls.unwatch_module_calls(enter, leave)
    assert nn.Module._call_impl is original and module_calls.module_calls_watched() == 0
    module_calls.unwatch_module_calls(enter, leave)  # twice: nothing
    assert nn.Module._call_impl is original


def test_what_torch_compile_traces_is_not_watched(watched):
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    compiled(torch.rand(1, 2))
    assert [entry for entry in watched if entry[1] != "OptimizedModule"] == []


def test_dynamo_imported_while_calls_are_watched_keeps_torchs_call_impl_for_its_shortcut():
    enter, leave = _nothing, (lambda *a: None)
    import torch._dynamo.utils as dynamo_utils

    saved = dynamo_utils.unpatched_nn_module_call_impl
    module_calls.watch_module_calls(enter, leave)
    dynamo_utils.unpatched_nn_module_call_impl = nn.Module._call_impl  # as an import now would take it
    module_calls.unwatch_module_calls(enter, leave)
    assert dynamo_utils.unpatched_nn_module_call_impl is saved is nn.Module._call_impl


def test_a_thread_set_aside_skips_the_watchers_there_were_and_calls_later_ones(watched):
    later: list = []

    def enter(module, args):
        later.append(type(module).__name__)

    with module_calls.watchers_set_aside():
        nn.ReLU()(torch.rand(1))
        module_calls.watch_module_calls(enter, _nothing)
        try:
            nn.Tanh()(torch.rand(1))
            elsewhere = threading.Thread(target=lambda: nn.Sigmoid()(torch.rand(1)))
            elsewhere.start()
            elsewhere.join()
        finally:
            module_calls.unwatch_module_calls(enter, _nothing)
    nn.GELU()(torch.rand(1))
    assert [name for kind, name, _ in watched if kind == "enter"] == ["Sigmoid", "GELU"]
    assert later == ["Tanh", "Sigmoid"]


def test_enter_finds_the_module_call_frame_where_the_recorder_reads_it(watched):
    # the recorder reads Module.__call__'s frame ENTER_TO_MODULE_CALL frames above enter's own (and
    # walks with module_call_frame only when torch lays its frames out otherwise)
    found = []

    def enter(module, args):
        frame = sys._getframe(module_calls.ENTER_TO_MODULE_CALL)
        walked = module_calls.module_call_frame(sys._getframe())
        found.append((frame.f_code is module_calls.MODULE_CALL_CODE, frame is walked, walked.f_back.f_code.co_name))

    def helper(model, x):
        return model(x)

    module_calls.watch_module_calls(enter, _nothing)
    try:
        helper(nn.Sequential(nn.ReLU()), torch.rand(2))
    finally:
        module_calls.unwatch_module_calls(enter, _nothing)
    assert found == [(True, True, "helper"), (True, True, "forward")]  # ReLU: Sequential.forward called it


def test_module_call_kwargs_reach_enter_and_torchs_own_hooks(watched):
    found = []

    class M(nn.Module):
        def forward(self, x, scale=1.0):
            return x * scale

    def enter(module, args):
        found.append(module_calls.module_call_kwargs(sys._getframe()))

    module = M()
    module.register_forward_pre_hook(lambda m, args: found.append(module_calls.module_call_kwargs(sys._getframe())))
    module_calls.watch_module_calls(enter, _nothing)
    try:
        module(torch.ones(1), scale=2.0)
    finally:
        module_calls.unwatch_module_calls(enter, _nothing)
    assert found == [{"scale": 2.0}, {"scale": 2.0}]


def test_what_replaced_the_stand_in_meanwhile_stays_and_ours_passes_calls_through():
    torchs = nn.Module._call_impl
    enter, leave = _nothing, (lambda *a: None)
    module_calls.watch_module_calls(enter, leave)
    ours, seen = nn.Module._call_impl, []

    def theirs(self, *args, **kwargs):  # another library's patch, made while the trace runs
        seen.append(type(self).__name__)
        return ours(self, *args, **kwargs)

    nn.Module._call_impl = theirs
    try:
        module_calls.unwatch_module_calls(enter, leave)  # the last watcher leaves
        assert nn.Module._call_impl is theirs  # the program's own replacement is left as it set it
        nn.ReLU()(torch.rand(1))
        assert seen == ["ReLU"] and module_calls.module_calls_watched() == 1  # ours, called by theirs
    finally:
        nn.Module._call_impl = torchs
