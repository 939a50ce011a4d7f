"""Watching module calls: torch's ``Module._call_impl`` stood in for while someone watches, and
where a module call's frames are.

Global forward hooks would do it too, but any global hook sends every module call in the process
through the slow half of ``Module._call_impl`` (a closure, the hook registries read, an
import, 2-6 µs a call after a forward's kernels). Standing in for ``Module._call_impl`` (a plain
method: replacing it touches no type slot) keeps torch's own ``_call_impl`` as it is, hooks and
all, and calls it between the watchers' ``enter`` and ``exit``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.nn.modules import module as _nn_module

_TORCH_CALL_IMPL = torch.nn.Module._call_impl

# (enter, exit) pairs: enter(module, args) before a call; exit(module, args, kwargs, output) after
# it returned, exit(module, args, None) when it raised (torch's protocol for always-called hooks,
# whose exception stays the one being handled). Replaced, never changed, so that a call reads one.
_watchers: tuple[tuple[Callable, Callable], ...] = ()
_hidden: dict[int, tuple] = {}  # thread -> the watchers it skips (see watchers_set_aside)
_lock = threading.Lock()


def _watched_call_impl(self: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
    """``Module._call_impl`` while module calls are watched: torch's, between the watchers'
    ``enter`` and ``exit``. What torch.compile traces, and any call when no one watches, goes
    straight to torch's (compiled code records nothing)."""
    __tracebackhide__ = True
    if torch.compiler._is_compiling_flag:
        return _TORCH_CALL_IMPL(self, *args, **kwargs)
    watchers = _watchers
    if _hidden:  # a thread runs set apart (the symbolic pass): it skips the watchers there were before
        hidden = _hidden.get(threading.get_ident())
        if hidden:
            watchers = tuple(pair for pair in watchers if pair not in hidden)
    if not watchers:
        return _TORCH_CALL_IMPL(self, *args, **kwargs)
    for enter, _ in watchers:
        enter(self, args)
    try:
        result = _TORCH_CALL_IMPL(self, *args, **kwargs)
    except BaseException:
        for _, leave in reversed(watchers):
            leave(self, args, None)
        raise
    for _, leave in reversed(watchers):
        leave(self, args, kwargs, result)
    return result


def watch_module_calls(enter: Callable, leave: Callable) -> None:
    """Call ``enter`` and ``leave`` around every module call, on every thread (they check the
    thread themselves), until :func:`unwatch_module_calls`."""
    global _watchers
    with _lock:
        if not _watchers:
            torch.nn.Module._call_impl = _watched_call_impl
        _watchers = (*_watchers, (enter, leave))


def unwatch_module_calls(enter: Callable, leave: Callable) -> None:
    """Stop calling them (nothing when they were not watching); torch's ``_call_impl`` is back
    when no one watches, unless something else replaced ours since (then ours passes through)."""
    global _watchers
    with _lock:
        kept = tuple(pair for pair in _watchers if pair != (enter, leave))
        if kept == _watchers:
            return
        _watchers = kept
        if not kept and torch.nn.Module.__dict__.get("_call_impl") is _watched_call_impl:
            torch.nn.Module._call_impl = _TORCH_CALL_IMPL
            _keep_dynamos_shortcut()


@contextlib.contextmanager
def watchers_set_aside() -> Iterator[None]:
    """On this thread, skip the watchers there are now (those that start watching inside are
    called); other threads still call them."""
    here = threading.get_ident()
    with _lock:
        before = _hidden.get(here)
        _hidden[here] = _watchers + (before or ())
    try:
        yield
    finally:
        with _lock:
            if before is None:
                del _hidden[here]
            else:
                _hidden[here] = before


def _keep_dynamos_shortcut() -> None:
    """torch._dynamo, imported while calls were watched, took ours for torch's ``_call_impl`` (it
    keeps that to call ``forward`` directly when a module's ``_call_impl`` is torch's): give it
    torch's back."""
    for name in ("torch._dynamo.utils", "torch._dynamo.variables.nn_module"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "unpatched_nn_module_call_impl", None) is _watched_call_impl:
            module.unpatched_nn_module_call_impl = _TORCH_CALL_IMPL


def module_calls_watched() -> int:
    """How many watchers there are (tests check none is left behind)."""
    return len(_watchers) + (torch.nn.Module.__dict__.get("_call_impl") is not _TORCH_CALL_IMPL)


def global_module_hook_counts() -> dict[str, int]:
    """Sizes of torch's global module hook registries, and the watchers of module calls (tests
    check none is left behind)."""
    names = (
        "_global_forward_pre_hooks", "_global_forward_hooks", "_global_forward_hooks_always_called",
        "_global_forward_hooks_with_kwargs", "_global_backward_pre_hooks", "_global_backward_hooks",
    )  # fmt: skip
    return {**{name: len(getattr(_nn_module, name)) for name in names}, "watchers": module_calls_watched()}


# --- where a module call's frames are -----------------------------------------------------------

# A watcher's ``enter`` is called by _watched_call_impl, whose caller is ``Module.__call__``
# (``_wrapped_call_impl``): this many frames above enter's own frame. The recorder reads that frame
# directly when its code is MODULE_CALL_CODE, and walks with :func:`module_call_frame` otherwise.
ENTER_TO_MODULE_CALL = 2
MODULE_CALL_CODE = torch.nn.Module._wrapped_call_impl.__code__
_CALL_IMPL_CODES = (_watched_call_impl.__code__, _TORCH_CALL_IMPL.__code__)


def module_call_kwargs(frame: Any, _max_depth: int = 8) -> dict | None:
    """The keyword arguments of the module call whose ``enter`` runs in ``frame`` (or a frame it
    called): ``enter`` receives only the positional ones, ``_call_impl(self, *args, **kwargs)`` holds
    the rest. ``None`` when no ``_call_impl`` frame is found."""
    for _ in range(_max_depth):
        if frame is None:
            return None
        if frame.f_code in _CALL_IMPL_CODES:
            kwargs = frame.f_locals.get("kwargs")
            return kwargs if isinstance(kwargs, dict) else None
        frame = frame.f_back
    return None


def module_call_frame(frame: Any, _max_depth: int = 8) -> Any:
    """The ``Module.__call__`` frame of the module call whose ``enter`` (or a hook of torch's) runs in
    ``frame`` or a frame it called: its ``f_back`` is the frame that called the module. ``None`` when
    no ``_call_impl`` frame is found."""
    for _ in range(_max_depth):
        if frame is None:
            return None
        if frame.f_code in _CALL_IMPL_CODES:
            outer = frame.f_back
            if outer is not None and outer.f_code in _CALL_IMPL_CODES:  # torch's, called by ours
                frame, outer = outer, outer.f_back
            return outer if outer is not None and outer.f_code is MODULE_CALL_CODE else frame
        frame = frame.f_back
    return None
