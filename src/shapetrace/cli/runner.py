"""Run a Python script as ``__main__`` under a trace, keeping its exit code and exception."""

from __future__ import annotations

import linecache
import os
import runpy
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from shapetrace.capture.source import AT_LINE_CODES
from shapetrace.diagnose import NOTE_PREFIX
from shapetrace.symbolic.spec import DimsOption
from shapetrace.trace import Trace, trace


class ScriptNotRunnable(Exception):
    """The script is missing or unreadable: nothing ran."""


@dataclass
class ScriptRun:
    """What running a script under a trace gave: the trace, the exit code the script asked for,
    and the exception that ended it (``None`` when it finished or called ``sys.exit``)."""

    path: Path
    trace: Trace
    exit_code: int
    exception: BaseException | None = None

    def format_exception(self) -> str:
        """The script's own traceback, as Python prints it without shapetrace: starting at the
        script's frame, without the recorder's frames (nor the frame that calls an op at the
        user's line), and without shapetrace's note, which the CLI shows as a panel instead."""
        if self.exception is None:
            return ""
        tb = _from_script_frame(self.exception.__traceback__, self.path)
        formatted = traceback.TracebackException(type(self.exception), self.exception, tb)
        codes = [frame.f_code for frame, _ in traceback.walk_tb(tb)]  # one per entry of formatted.stack
        formatted.stack = traceback.StackSummary.from_list(
            [
                summary
                for summary, code in zip(formatted.stack, codes)
                if not summary.filename.startswith(_PACKAGE_DIR) and code not in AT_LINE_CODES
            ]
        )
        notes = getattr(formatted, "__notes__", None)
        if notes:
            formatted.__notes__ = [n for n in notes if not str(n).startswith(NOTE_PREFIX)] or None
        return "".join(formatted.format())


_PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")


def check_runnable(path: str | os.PathLike) -> Path:
    """The script's resolved path; :class:`ScriptNotRunnable` with one clear line if it cannot run."""
    script = Path(path)
    if not script.exists():
        raise ScriptNotRunnable(f"shapetrace: {path}: no such file")
    if script.is_dir():
        raise ScriptNotRunnable(f"shapetrace: {path}: is a directory, not a Python script")
    if not script.is_file():  # a FIFO or a device: opening it could wait forever
        raise ScriptNotRunnable(f"shapetrace: {path}: not a regular file, not a Python script")
    try:
        with open(script, "rb") as f:
            f.read(1)
    except OSError as error:
        raise ScriptNotRunnable(f"shapetrace: {path}: cannot read it ({error.strerror or error})") from None
    return script.resolve()


def run_script(
    path: str | os.PathLike,
    args: list[str] | None = None,
    dims: DimsOption | None = None,
    symbolic: bool = True,
    on_violation: str = "warn",
    symbolic_budget: float | None = None,
) -> ScriptRun:
    """Run ``path`` as ``__main__`` with ``sys.argv = [path, *args]``, tracing every op
    (``dims``/``symbolic``/``on_violation``/``symbolic_budget``: as for :class:`~shapetrace.trace`,
    from ``--dims``, ``--on-violation`` and ``--symbolic-budget``).

    ``sys.argv`` and ``sys.path`` are restored afterwards. A ``SyntaxError`` in the script is
    reported like any other exception the script raises.
    """
    script = check_runnable(path)
    linecache.checkcache(str(script))  # the script may have changed since this process last read it
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [str(path), *(args or [])]
    sys.path.insert(0, str(script.parent))
    tracer = trace(dims=dims, symbolic=symbolic, on_violation=on_violation, symbolic_budget=symbolic_budget)
    recorded = tracer.__enter__()
    exit_code, exception = 0, None
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as stop:
        exit_code = _exit_code(stop)
    except BaseException as error:  # the script's own failure: kept, reported by the caller
        exception = error
        exit_code = 130 if isinstance(error, KeyboardInterrupt) else 1
    finally:
        tracer.__exit__(type(exception) if exception else None, exception, None)
        sys.argv, sys.path[:] = saved_argv, saved_path
    return ScriptRun(script, recorded, exit_code, exception)


def _exit_code(stop: SystemExit) -> int:
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code
    print(stop.code, file=sys.stderr)
    return 1


def _from_script_frame(tb: TracebackType | None, script: Path) -> TracebackType | None:
    """Skip the runner's and runpy's frames: start at the first frame in the script's file."""
    first = tb
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == script:
            return tb
        tb = tb.tb_next
    return first  # e.g. a SyntaxError, raised before any script frame ran
