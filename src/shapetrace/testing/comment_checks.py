"""``assert_shape_comments``: the ``shapetrace --check`` of a script, as a test assertion."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from shapetrace.testing.expected import ShapeMismatch

if TYPE_CHECKING:
    from shapetrace.comments import CheckReport
    from shapetrace.trace import Trace


def assert_shape_comments(script: str | os.PathLike, *args: str, strict: bool = False) -> None:
    """Run ``script`` as ``__main__`` (with ``args`` as its command line, like
    ``shapetrace --check SCRIPT ARGS``) and fail when a ``# (B, C, H*W)`` shape comment in the
    files it ran through disagrees with what ran.

    A relative path is taken from the current directory. The script must run to the end (exit
    code 0), and at least one comment must be checked. With ``strict``, a comment that could
    not be checked (a name with no known value, a line that did not run) fails too.
    """
    __tracebackhide__ = True
    from shapetrace.cli.runner import ScriptNotRunnable, run_script

    try:
        run = run_script(script, list(args))
    except ScriptNotRunnable as error:
        raise ShapeMismatch(str(error).removeprefix("shapetrace: ")) from None
    if run.exception is not None:
        raise ShapeMismatch(
            f"{script} raised, so its shape comments were not checked:\n{run.format_exception()}"
        )
    if run.exit_code != 0:
        raise ShapeMismatch(f"{script} exited with code {run.exit_code}; its shape comments were not checked")
    check_trace_comments(run.trace, str(script), strict)


def check_trace_comments(recorded: Trace, what: str, strict: bool = False) -> CheckReport:
    """Fail when a shape comment in the files ``recorded`` ran through disagrees with it."""
    __tracebackhide__ = True
    from shapetrace.comments import Status, check_comments

    report = check_comments(recorded)
    failing = {Status.STALE} | ({Status.UNCHECKED, Status.NOT_RUN} if strict else set())
    bad = [check for check in report.checks if check.status in failing]
    if bad:
        plural = "s" if len(bad) != 1 else ""
        kind = f"shape comment{plural} stale or not checked" if strict else f"stale shape comment{plural}"
        lines = [f"{what}: {len(bad)} {kind}:"]
        lines.extend(f"  {_message(check)}" for check in bad)
        lines.extend(f"  {skipped}" for skipped in report.skipped)
        lines.append(report.lines()[-1])
        raise ShapeMismatch("\n".join(lines))
    checked = [c for c in report.checks if c.status in (Status.FRESH, Status.AT_SIZES)]
    if not checked:
        reasons = [*report.skipped, *(c.message() for c in report.checks)]
        detail = "".join(f"\n  {reason}" for reason in reasons)
        raise ShapeMismatch(f"no shape comment of {what} could be checked against what ran{detail}")
    return report


def _message(check) -> str:
    from shapetrace.comments import Status

    if check.status is Status.NOT_RUN:
        return f"{check.file}:{check.line}: comment says {check.comment}, but the line did not run"
    return check.message()
