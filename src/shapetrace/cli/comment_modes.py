"""``--annotate``, ``--write`` and ``--check`` for the ``shapetrace`` command."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from shapetrace.cli.runner import ScriptRun

MODES = ("annotate", "write", "check")


def add_comment_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--annotate",
        action="store_true",
        help="print the traced source with a # (B, C, H*W) shape comment per line",
    )
    group.add_argument(
        "--write",
        action="store_true",
        help="insert missing and update stale shape comments in the traced files",
    )
    group.add_argument(
        "--check", action="store_true", help="list shape comments that disagree with what ran; exit 1 if any"
    )


def comment_mode(options: argparse.Namespace) -> str | None:
    """The comment command asked for, ``None`` for the plain trace table."""
    return next((mode for mode in MODES if getattr(options, mode, False)), None)


def run_comment_mode(mode: str, run: ScriptRun, console: Console) -> int:
    """Annotate, write or check after the script ran; the exit code. A script that raised is
    not annotated, written or checked (its traceback and trace table were printed)."""
    if run.exception is not None:
        print(f"shapetrace: --{mode} skipped: the script raised", file=sys.stderr)
        return run.exit_code
    if mode == "annotate":  # the comment modules (sympy, pygments) are imported for their mode only
        from shapetrace.comments.annotate import annotate

        console.print(annotate(run.trace), soft_wrap=True)  # long lines stay whole, for copying
        return run.exit_code
    if mode == "check":
        from shapetrace.comments.check import check_comments

        report = check_comments(run.trace)
        print(str(report), flush=True)
        return report.exit_code or run.exit_code
    from shapetrace.comments.write import write_comments

    written = write_comments(run.trace)
    print(str(written), flush=True)
    return 1 if written.failed else run.exit_code
