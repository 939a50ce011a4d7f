"""What keeps a replayed ``forward`` from being observed: the symbolic pass runs the user's code
again, on fake tensors, and nothing of that second run may reach the program.

Three layers (docs/symbolic.md, "What the replay may not do"):

- **Stopped before it happens.** While the replayed code runs outside torch's ops, a profile
  function (``sys.setprofile``, this thread only) sees every call it makes and raises
  :class:`StopReplay` *before* the call runs when it would: open a file for writing, write
  to a file, save with ``torch.save``, change the file system or the process (``os``
  calls, subprocesses, sockets), set or delete an attribute of a module that existed before the
  pass, call a mutating method (``append``, ``update``, ``add``, ...) of a list, dict, set or deque
  that existed before the pass (reachable from the model's modules or the globals of the code
  that runs), call a ``torch.compile``'d function, or change one of torch's global settings.
  The exception unwinds the forward: the ops before it keep their symbolic shapes, the rest of
  that call keeps its concrete ones, and the reason says what and where.
- **Found after it happened, and undone.** Writes that are not calls (``self.__dict__[k] = v``,
  ``cache[k] = v``, ``global counter; counter += 1``, a class attribute) are found by comparing
  snapshots taken before the call (module ``__dict__``s and registries, containers found as
  above, the globals and classes of the code that ran) with the state after it; what changed
  is put back and the call's shapes are concrete.
- **Kept away.** Output written to ``sys.stdout``/``sys.stderr``, log records and warnings of this
  thread are dropped (other threads print, log and warn as usual); Python's, numpy's and torch's
  random states are compared after the pass and restored if the forward drew from them.

Not seen: writes by C extensions that open files themselves (other than ``torch.save``), a
``print`` whose ``file`` comes in ``**kwargs``, mutations of objects reachable only through
other objects' attributes more than two levels deep, attribute writes on plain objects held in
a local variable, and anything torch's own kernels do.
"""

from __future__ import annotations

import ast
import builtins
import collections
import contextlib
import functools
import io
import logging
import operator
import os
import random
import sys
import threading
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from shapetrace._private import torch_symbolic as ts
from shapetrace.capture.source import is_library_code
from shapetrace.symbolic.naming import SHAPETRACE_ROOT, THIRD_PARTY, call_at, is_users_file


class StopReplay(BaseException):  # noqa: N818 (not an error: the replay stopping itself)
    """Raised in a replayed forward where the replay must not go on: the code would do something
    the program could observe (``what`` says what, ``file``/``line`` where), or the pass is out
    of time. A ``BaseException``, so that a forward's ``except Exception`` does not swallow it."""

    def __init__(self, what: str, file: str = "", line: int = 0, *, effect: bool = True) -> None:
        super().__init__(what)
        self.what, self.file, self.line, self.effect = what, file, line, effect

    def describe(self) -> str:
        where = f" at {os.path.basename(self.file)}:{self.line}" if self.file else ""
        return f"forward {self.what}{where}" if self.effect else f"{self.what}{where}"

    def __str__(self) -> str:
        return self.describe()


# --- what counts as an effect ------------------------------------------------------------------

_CONTAINERS = (list, dict, set, collections.deque, bytearray, io.StringIO, io.BytesIO)
_MUTATORS = frozenset({
    "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "popitem",
    "setdefault", "add", "discard", "difference_update", "intersection_update",
    "symmetric_difference_update", "appendleft", "extendleft", "popleft", "rotate", "move_to_end",
    "__setitem__", "__delitem__", "__iadd__", "__imul__", "__ior__", "__iand__", "__ixor__", "__isub__",
    "write", "writelines", "truncate", "seek",
})  # fmt: skip
_REAL_FILES = (io.FileIO, io.BufferedWriter, io.BufferedRandom, io.BufferedRWPair, io.TextIOWrapper)
_FILE_WRITES = frozenset({"write", "writelines", "truncate", "flush"})
_SOCKET_CALLS = frozenset({"connect", "connect_ex", "send", "sendall", "sendto", "sendmsg", "bind", "listen"})
_WATCHED_METHODS = _MUTATORS | _FILE_WRITES | _SOCKET_CALLS | {"tofile"}  # method names _check_method looks at
_OS_CALLS = (
    "write", "remove", "unlink", "rename", "replace", "mkdir", "rmdir", "truncate", "ftruncate", "chmod",
    "fchmod", "chown", "lchown", "link", "symlink", "utime", "system", "kill", "killpg", "putenv", "unsetenv",
    "chdir", "fchdir", "fork", "forkpty", "execv", "execve", "posix_spawn", "posix_spawnp", "umask", "setsid",
    "mkfifo", "mknod", "sendfile",
)  # fmt: skip
_TORCH_SETTINGS = (
    "set_default_dtype", "set_default_device", "set_default_tensor_type", "set_num_threads",
    "set_num_interop_threads", "use_deterministic_algorithms", "set_printoptions",
    "set_float32_matmul_precision", "set_flush_denormal", "set_anomaly_enabled",
)  # fmt: skip


def _c_effects() -> dict[Any, str]:
    """Builtin callables (by identity) that change something outside the process's objects."""
    found: dict[Any, str] = {}
    for name in _OS_CALLS:
        function = getattr(os, name, None)
        if function is not None:
            found[function] = f"calls os.{name}"
    for name in _TORCH_SETTINGS:
        function = getattr(torch, name, None)
        if isinstance(function, types.BuiltinFunctionType):
            found[function] = f"changes torch.{name.removeprefix('set_')} (torch.{name})"
    posix = sys.modules.get("_posixsubprocess")
    if posix is not None:
        found[posix.fork_exec] = "starts a subprocess"
    return found


def _python_effects() -> dict[Any, str]:
    """Python functions (by code object) whose call is an effect in itself."""
    import torch.serialization

    found = {
        torch.serialization.save.__code__: "saves with torch.save",
    }
    for name in _TORCH_SETTINGS:
        function = getattr(torch, name, None)
        code = getattr(function, "__code__", None)
        if code is not None:
            found[code] = f"changes torch.{name.removeprefix('set_')} (torch.{name})"
    jit = sys.modules.get("torch.jit._serialization")
    if jit is not None:
        found[jit.save.__code__] = "saves with torch.jit.save"
    for code in ts.compiled_entry_codes():
        found[code] = "calls a torch.compile'd function (the replay does not compile)"
    return found


_MODULE_SETATTR = nn.Module.__setattr__.__code__
_MODULE_DELATTR = nn.Module.__delattr__.__code__
_MODULE_INIT = nn.Module.__init__.__code__


@functools.lru_cache(maxsize=4)
def _watched_calls(eval_frame: Any, jit_serialization: Any) -> dict[int, tuple[Any, str | None]]:
    """``id(code) -> (code, what its call does)`` for the Python functions the profile function
    looks at (:func:`_python_effects`, ``Module.__setattr__``/``__delattr__``/``__init__``: ``None``).
    By id: a code object's hash is not cached (it hashes its bytecode and constants on each
    lookup); the code is kept, so its id stays its own. Cached per the torch modules that add
    effects once imported (dynamo's compile wrapper, ``torch.jit.save``): finding the compile
    wrapper's code walks dynamo's module (0.5 ms per replayed call)."""
    calls: dict[int, tuple[Any, str | None]] = {id(code): (code, what) for code, what in _python_effects().items()}
    for code in (_MODULE_SETATTR, _MODULE_DELATTR, _MODULE_INIT):
        calls[id(code)] = (code, None)
    return calls


# --- the guard ---------------------------------------------------------------------------------


class EffectGuard:
    """Watches one replayed call on this thread: :meth:`watching` around the call, and the
    replay's recorder turns the profile off inside each op (:meth:`unwatched`)."""

    def __init__(self, modules: list[nn.Module]) -> None:
        self.modules = modules  # the model's modules: their state must not change
        self.effect: StopReplay | None = None
        self.position: Callable[[], int] = lambda: 0  # the replay's op count (set by the engine)
        self.stopped_at: int | None = None  # the op count when the effect stopped the call
        self._c_effects = _c_effects()
        self._calls = _watched_calls(sys.modules.get("torch._dynamo.eval_frame"), sys.modules.get("torch.jit._serialization"))
        self._fresh: set[int] = set()  # modules made during the pass
        self._containers: dict[int, tuple[Any, Where]] = {}  # id -> (container, where it was found)
        self._empty: list[Any] = []  # watched containers that were empty before the call
        self._seen_globals: dict[int, Any] = {}  # id -> namespace or class watched (kept: its id stays its own)
        self._snapshots: list[tuple[str, Any, Any]] = []  # (kind, object, saved state)
        self._profile_on = False  # inside watching()
        self.live = False  # the profile function is on now (watching, and not paused)

    # --- running ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Run the replayed call under the guard; on exit, compare the snapshots (and undo)."""
        previous = sys.getprofile()
        self._take_snapshots()
        self._profile_on = self.live = True
        sys.setprofile(self._profile)
        try:
            yield
        finally:
            sys.setprofile(previous)
            self._profile_on = self.live = False
            changed = self._compare_snapshots()
            if changed is not None and self.effect is None:
                self.effect = changed

    def unwatched(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` without the profile: shapetrace's and torch's own code (an op, the
        replay's bookkeeping around a module call) is not the user's, and the profile function
        costs a Python call per event it sees (a third of a pass when it saw them). The profile
        sees one call on the way in."""
        if not self.live:
            return function(*args)
        self.live = False
        sys.setprofile(None)
        try:
            return function(*args)
        finally:
            self.live = True
            sys.setprofile(self._profile)

    def watch_from_here(self, on: bool) -> None:
        """Turn the profile function on (or off) until the enclosing switch ends: the replay's
        module hooks watch a module's own hooks and ``forward`` (the user's code), not torch's
        ``Module.__call__`` around them (20-40 calls per module call, each a Python call to the
        profile function)."""
        if self._profile_on and self.live != on:
            self.live = on
            sys.setprofile(self._profile if on else None)

    def stop(self, what: str, frame: Any) -> None:
        """Record the effect (the first one wins) and raise it in the replayed code."""
        effect = StopReplay(what, *_user_site(frame))
        if self.effect is None:
            self.effect, self.stopped_at = effect, self.position()
        raise effect

    # --- the profile function --------------------------------------------------------------

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        # Called for every event of the replayed code (returns too): the common case, a call
        # that is no effect from code whose globals were seen, is two dict lookups.
        if event == "call":
            code = frame.f_code
            found = self._calls.get(id(code))
            if found is not None and found[0] is code:
                self._special_call(frame, code, found[1])
            elif id(frame.f_globals) not in self._seen_globals and is_users_file(code.co_filename):
                self._watch_globals(frame.f_globals)  # the user's: watched from their first call
        elif event == "c_call":
            what = self._c_effects.get(arg)
            if what is not None:
                if not frame.f_code.co_filename.startswith("<frozen"):  # importlib writes .pyc files
                    self.stop(what, frame)
                return
            if arg is builtins.open:
                self._check_open(frame)
            elif arg is builtins.print:
                self._check_print(frame)
            elif getattr(arg, "__name__", None) in _WATCHED_METHODS:
                owner = getattr(arg, "__self__", None)
                if owner is not None and not isinstance(owner, types.ModuleType):
                    self._check_method(frame, owner, arg.__name__)

    def _special_call(self, frame: Any, code: Any, what: Any) -> None:
        """A call of ``Module.__setattr__``/``__delattr__``/``__init__``, or of a function whose
        call is an effect (``torch.save``)."""
        if code is _MODULE_SETATTR or code is _MODULE_DELATTR:
            owner = frame.f_locals.get("self")
            if id(owner) not in self._fresh:
                verb = "sets" if code is _MODULE_SETATTR else "deletes"
                self.stop(f"{verb} `{_module_name(owner)}.{frame.f_locals.get('name')}`", frame.f_back)
        elif code is _MODULE_INIT:
            self._fresh.add(id(frame.f_locals.get("self")))
        else:
            self.stop(what, frame.f_back)

    def _check_method(self, frame: Any, owner: Any, name: str) -> None:
        if name in _MUTATORS:
            found = self._containers.get(id(owner))
            if found is not None and found[0] is owner:
                self.stop(f"changes {_describe(found[1])} ({type(owner).__name__}.{name})", frame)
        if name in _FILE_WRITES and isinstance(owner, _REAL_FILES):
            self.stop("writes to a file", frame)
        if name in _SOCKET_CALLS and type(owner).__module__ == "socket":
            self.stop(f"uses a socket (socket.{name})", frame)
        if name == "tofile" and type(owner).__module__ == "numpy":
            self.stop("writes to a file (ndarray.tofile)", frame)

    def _check_open(self, frame: Any) -> None:
        call = call_at(frame.f_code, frame.f_lasti)
        mode = _argument(call, 1, "mode") if call is not None else None
        if call is None or (mode is not None and not isinstance(mode, ast.Constant)):
            self.stop("opens a file (the replay cannot tell it is for reading)", frame)
        text = mode.value if mode is not None else "r"
        if not isinstance(text, str) or set(text) & set("wax+"):
            self.stop("opens a file for writing", frame)

    def _check_print(self, frame: Any) -> None:
        call = call_at(frame.f_code, frame.f_lasti)
        target = _argument(call, None, "file") if call is not None else None
        if target is not None and ast.unparse(target) not in ("sys.stdout", "sys.stderr", "None"):
            self.stop("prints to a file", frame)

    # --- snapshots ---------------------------------------------------------------------------
    # A model has a dozen registries per module (``_parameters``, ``_forward_hooks``, ...), nearly
    # all empty: an empty container is kept in a list and checked by truth after the call; what a
    # container is called ("Linear._buffers") is written only when it is reported.

    def _take_snapshots(self) -> None:
        snapshots, containers, watched, empty = self._snapshots, _CONTAINERS, self._containers, self._empty
        for module in self.modules:
            state = module.__dict__
            snapshots.append(("attributes", module, dict(state)))
            for key, value in state.items():
                if type(value) in _REGISTRIES and not value and id(value) not in watched:
                    watched[id(value)] = (value, (module, key))
                    empty.append(value)
                elif isinstance(value, containers):
                    self._watch(value, (module, key), depth=1)
            self._watch_class(type(module))

    def _watch(self, value: Any, where: Where, depth: int) -> None:
        if id(value) in self._containers:
            return
        self._containers[id(value)] = (value, where)
        if not value and not isinstance(value, (io.StringIO, io.BytesIO)):
            self._empty.append(value)
            return
        if _size(value) <= MAX_SNAPSHOT:  # a bigger one is still watched for mutating calls
            self._snapshots.append(("container", value, _contents(value)))
        if depth > 0 and isinstance(value, (list, dict)) and len(value) <= 1000:
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(item, _CONTAINERS):
                    self._watch(item, (where, key), depth - 1)

    def _watch_class(self, cls: type) -> None:
        if id(cls) in self._seen_globals or not is_users_file(getattr(sys.modules.get(cls.__module__), "__file__", None)):
            return
        self._seen_globals[id(cls)] = cls
        self._snapshots.append(("class", cls, dict(vars(cls))))
        for key, value in vars(cls).items():
            if isinstance(value, _CONTAINERS):
                self._watch(value, f"{cls.__name__}.{key}", depth=1)

    def _watch_globals(self, namespace: dict) -> None:
        self._seen_globals[id(namespace)] = namespace
        module = namespace.get("__name__", "?")
        self._snapshots.append(("globals", namespace, dict(namespace)))
        for key, value in list(namespace.items()):
            if key.startswith("__"):
                continue
            if isinstance(value, type):
                self._watch_class(value)
            elif isinstance(value, _CONTAINERS):
                self._watch(value, f"global {key} of {module}", depth=1)
            elif (
                hasattr(value, "__dict__")
                and not isinstance(value, (types.ModuleType, types.FunctionType, nn.Module, torch.Tensor))
                and is_users_file(getattr(sys.modules.get(type(value).__module__), "__file__", None))
            ):
                self._snapshots.append(("attributes", value, dict(vars(value))))

    def _where(self, container: Any) -> str:
        return _describe(self._containers[id(container)][1])

    def _compare_snapshots(self) -> StopReplay | None:
        """The first change found (undone), if any."""
        found: StopReplay | None = None
        for container in self._empty:
            if container:
                container.clear()
                found = found or StopReplay(f"changed {self._where(container)} (found after the call, and undone)")
        for kind, owner, saved in self._snapshots:
            if kind == "container":
                if not _unchanged(owner, saved):
                    _restore_container(owner, saved)
                    found = found or StopReplay(f"changed {self._where(owner)} (found after the call, and undone)")
                continue
            current = vars(owner) if kind in ("attributes", "class") else owner
            if _same_items(current, saved):
                continue
            current = dict(current)
            changed = [key for key in saved.keys() | current.keys() if saved.get(key, _MISSING) is not current.get(key, _MISSING)]
            for key in changed:
                old = saved.get(key, _MISSING)
                _restore_item(kind, owner, key, old)
            if kind == "globals":
                what = f"global {changed[0]} of {owner.get('__name__', '?')}"
            elif kind == "class":
                what = f"{owner.__name__}.{changed[0]}"
            else:
                what = f"{_module_name(owner)}.{changed[0]}"
            found = found or StopReplay(f"changed {what} (found after the call, and undone)")
        return found


_MISSING = object()
_REGISTRIES = (dict, collections.OrderedDict, set, list)  # a module's own, nearly all empty
MAX_SNAPSHOT = 100_000  # items (or characters) of a container copied to compare after a call
# Where a container was found: a text, (module, attribute name), or (where its holder was found, key).
Where = str | tuple


def _describe(where: Where) -> str:
    if isinstance(where, str):
        return where
    holder, key = where
    if isinstance(holder, nn.Module):
        return f"{type(holder).__name__}.{key}"
    return f"{_describe(holder)}[{key!r}]"


def _same_items(current: Any, saved: dict) -> bool:
    """Whether a namespace holds the same keys, in the same order, bound to the same objects."""
    return len(current) == len(saved) and current.keys() == saved.keys() and all(map(operator.is_, current.values(), saved.values()))


def _size(container: Any) -> int:
    if isinstance(container, (io.StringIO, io.BytesIO)):
        return len(container.getbuffer()) if isinstance(container, io.BytesIO) else container.tell()
    return len(container)


def _contents(container: Any) -> Any:
    """What a container holds, to compare and restore (items by identity)."""
    if isinstance(container, (io.StringIO, io.BytesIO)):
        return container.getvalue(), container.tell()
    if isinstance(container, dict):
        return list(container.items())
    return list(container)


def _unchanged(container: Any, saved: Any) -> bool:
    if isinstance(container, (io.StringIO, io.BytesIO)):
        return _contents(container) == saved
    if len(container) != len(saved):
        return False
    if isinstance(container, set):
        return all(item in container for item in saved)
    if isinstance(container, dict):
        return all(key is old or key == old for key, (old, _) in zip(container, saved)) and all(
            map(operator.is_, container.values(), (value for _, value in saved))
        )
    return all(map(operator.is_, container, saved))


def _restore_container(container: Any, saved: Any) -> None:
    if isinstance(container, (io.StringIO, io.BytesIO)):
        value, position = saved
        container.seek(0)
        container.truncate()
        container.write(value)
        container.seek(position)
    elif isinstance(container, dict):
        container.clear()
        container.update(saved)
    elif isinstance(container, (list, bytearray)):
        container[:] = saved
    elif isinstance(container, set):
        container.clear()
        container.update(saved)
    else:  # deque
        container.clear()
        container.extend(saved)


def _restore_item(kind: str, owner: Any, key: str, old: Any) -> None:
    if kind == "globals":
        if old is _MISSING:
            owner.pop(key, None)
        else:
            owner[key] = old
    elif kind == "class":
        if old is _MISSING:
            delattr(owner, key)
        else:
            setattr(owner, key, old)
    elif old is _MISSING:
        vars(owner).pop(key, None)
    else:
        vars(owner)[key] = old


def _argument(call: ast.Call, position: int | None, keyword: str) -> ast.expr | None:
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    if position is not None and len(call.args) > position and not any(isinstance(a, ast.Starred) for a in call.args):
        return call.args[position]
    return None


def _module_name(module: Any) -> str:
    return "self" if isinstance(module, nn.Module) else type(module).__name__


def _user_site(frame: Any) -> tuple[str, int]:
    """File and line of the user's code that made the call: the first frame outside installed
    packages and the standard library (else the first outside torch), below the replay's own."""
    first = None
    while frame is not None and not frame.f_code.co_filename.startswith(SHAPETRACE_ROOT):
        code = frame.f_code
        if not is_library_code(code):
            first = first or frame
            if not code.co_filename.startswith(THIRD_PARTY) and not code.co_filename.startswith("<"):
                return code.co_filename, frame.f_lineno
        frame = frame.f_back
    return (first.f_code.co_filename, first.f_lineno) if first is not None else ("", 0)


# --- output, warnings and random states --------------------------------------------------------


_quiet: dict[int, int] = {}  # threads running a pass -> how many passes deep
_quiet_lock = threading.Lock()
_saved: dict[str, Any] = {}  # what the stand-ins replaced, while any thread runs a pass


class _ThreadSink:
    """Stands for ``sys.stdout``/``sys.stderr`` while passes run: a pass's thread's writes are
    dropped, every other thread's go to the stream it replaces."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if threading.get_ident() in _quiet:
            return len(text)
        return self._stream.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if threading.get_ident() not in _quiet:
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _show_elsewhere(*args: Any, **kwargs: Any) -> None:
    if threading.get_ident() not in _quiet:
        _saved["showwarning"](*args, **kwargs)


def _enabled_elsewhere(logger: logging.Logger, level: int, _get_ident: Callable[[], int] = threading.get_ident) -> bool:
    return _get_ident() not in _quiet and _saved["isEnabledFor"](logger, level)  # torch asks before each debug record


def _handle_elsewhere(logger: logging.Logger, record: logging.LogRecord) -> None:
    if threading.get_ident() not in _quiet:
        _saved["handle"](logger, record)


def _install_stand_ins() -> None:
    _saved.update(stdout=sys.stdout, stderr=sys.stderr, showwarning=warnings.showwarning,
                  isEnabledFor=logging.Logger.isEnabledFor, handle=logging.Logger.handle)  # fmt: skip
    sys.stdout, sys.stderr = _ThreadSink(sys.stdout), _ThreadSink(sys.stderr)
    warnings.showwarning = _show_elsewhere
    logging.Logger.isEnabledFor, logging.Logger.handle = _enabled_elsewhere, _handle_elsewhere


def _remove_stand_ins() -> None:
    """Put back what was replaced, where it is still ours (a stream the program set meanwhile stays)."""
    if isinstance(sys.stdout, _ThreadSink):
        sys.stdout = _saved["stdout"]
    if isinstance(sys.stderr, _ThreadSink):
        sys.stderr = _saved["stderr"]
    if warnings.showwarning is _show_elsewhere:
        warnings.showwarning = _saved["showwarning"]
    if logging.Logger.isEnabledFor is _enabled_elsewhere:
        logging.Logger.isEnabledFor = _saved["isEnabledFor"]
    if logging.Logger.handle is _handle_elsewhere:
        logging.Logger.handle = _saved["handle"]
    _saved.clear()


@contextlib.contextmanager
def kept_apart() -> Iterator[None]:
    """This thread's prints, log records and warnings dropped (torch's own, e.g. the ShapeEnv's
    debug records, and the forward's), random states restored if drawn from. The stand-ins for
    ``sys.stdout``/``sys.stderr``, ``warnings.showwarning`` and ``logging.Logger``'s
    ``isEnabledFor`` and ``handle`` (torch's trace logger has its own ``isEnabledFor``) are put in
    place by the first pass running in the process and removed by the last; they pass every other
    thread's calls through unchanged."""
    here = threading.get_ident()
    with _quiet_lock:
        if not _quiet:
            _install_stand_ins()
        _quiet[here] = _quiet.get(here, 0) + 1
    states = _random_states()
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet[here] -= 1
            if not _quiet[here]:
                del _quiet[here]
            if not _quiet:
                _remove_stand_ins()
        _restore_random_states(states)


def _random_states() -> tuple:
    numpy = sys.modules.get("numpy")
    return random.getstate(), numpy.random.get_state() if numpy is not None else None, torch.get_rng_state()


def _restore_random_states(saved: tuple) -> None:
    python, numpy_state, torch_state = saved
    if random.getstate() != python:
        random.setstate(python)
    numpy = sys.modules.get("numpy")
    if numpy_state is not None and not _numpy_states_equal(numpy.random.get_state(), numpy_state):
        numpy.random.set_state(numpy_state)
    if not torch.equal(torch.get_rng_state(), torch_state):
        torch.set_rng_state(torch_state)


def _numpy_states_equal(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and (a[1] == b[1]).all() and a[2:] == b[2:]

