"""``shapetrace [--json FILE] SCRIPT [ARGS...]``: run a script, trace every op, print the table."""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from shapetrace.cli.comment_modes import add_comment_options, comment_mode, run_comment_mode
from shapetrace.cli.progress import run_with_progress
from shapetrace.cli.runner import ScriptNotRunnable, run_script
from shapetrace.cli.view_options import add_view_options, check_view_options, view_from_options, write_exports
from shapetrace.contracts import ON_VIOLATION
from shapetrace.render.console import output_console, print_views
from shapetrace.render.diagnostics import DiagnosticsView
from shapetrace.symbolic.job import check_budget
from shapetrace.symbolic.spec import DimsError, parse_cli_dims


class _Parser(argparse.ArgumentParser):
    """argparse, saying what to pass when the script is missing (argparse would name ``args``
    too, which is optional)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("the following arguments are required"):
            message = (
                "no script: give the Python script to run, then its arguments (shapetrace SCRIPT [ARGS...])"
            )
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="shapetrace",
        description="Run a Python script as __main__, record every torch op and module call, "
        "and print each op's line, module and output shape.",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write the trace as JSON (schema shapetrace.trace/1)"
    )
    add_comment_options(parser)
    add_view_options(parser)
    parser.add_argument(
        "--dims", metavar="SPEC", action="append", default=[],
        help="name dims: 'B C H W' (a root module's first tensor argument), x='B N' (its argument x), "
        "D=512 (a size); may be repeated. Without it, names come from jaxtyping hints and from "
        "torch.rand(B, C, H, W)-style calls in the script",
    )  # fmt: skip
    parser.add_argument(
        "--no-symbolic", action="store_true", help="show concrete sizes only (skip the symbolic pass)"
    )
    parser.add_argument(
        "--symbolic-budget", metavar="SECONDS", type=float, default=None,
        help="time the symbolic pass may take (default: the larger of 2 s and 5x the traced forward); "
        "ops not reached keep their concrete sizes",
    )  # fmt: skip
    parser.add_argument(
        "--on-violation", choices=ON_VIOLATION, default="warn",
        help="what a contract violation does besides being recorded: warn (default), raise a "
        "ContractError in the script, or record only (docs/contracts.md)",
    )  # fmt: skip
    parser.add_argument("script", help="the Python script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``shapetrace`` command: ``argv`` (default: the process's arguments) -> exit code."""
    with _startup_frozen():
        exit_code = _main(argv)
    if argv is None:  # the command's own process (`shapetrace`, `python -m shapetrace`): about to exit
        _freeze_at_exit()
    return exit_code


@contextmanager
def _startup_frozen() -> Iterator[None]:
    """Keep what is alive before the script runs (torch, sympy, shapetrace: millions of objects
    that live as long as the process) out of the garbage collector's full collections while the
    script, the symbolic pass and the comments run: each full collection would rescan them
    (measured: 0.3 s each, two or three in a 2000-line ``--write``). Given back afterwards, so
    that a caller running ``main`` in-process collects its garbage as usual."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _freeze_at_exit() -> None:
    """Freeze every object first thing at exit: the interpreter's collections while it shuts down
    then skip the millions of objects torch._dynamo, sympy and the trace leave (measured on
    examples/patch_embed.py: exit 1.7 s -> 0.3 s; a plain torch script's exit takes 0.9 s). Only
    cyclic garbage left at exit is not finalized, which Python does not promise either; the other
    atexit functions (``weakref.finalize``, logging's flush) still run, after it."""
    atexit.register(gc.freeze)  # registered last: runs first


def _main(argv: list[str] | None) -> int:
    options = build_parser().parse_args(argv)
    problem = check_view_options(options) or json_target_problem(options.json)
    if problem:
        print(f"shapetrace: {problem}", file=sys.stderr)
        return 2
    try:
        dims = parse_cli_dims(options.dims)
    except DimsError as error:
        print(f"shapetrace: --dims: {error}", file=sys.stderr)
        return 2
    try:
        budget = check_budget(options.symbolic_budget)
    except ValueError as error:
        print(f"shapetrace: --symbolic-budget: {error}", file=sys.stderr)
        return 2
    try:
        run = run_script(
            options.script, options.args, dims=dims, symbolic=not options.no_symbolic,
            on_violation=options.on_violation, symbolic_budget=budget,
        )  # fmt: skip
    except ScriptNotRunnable as error:
        print(error, file=sys.stderr)
        return 2
    sys.stdout.flush()
    if run.exception is not None:
        sys.stderr.write(run.format_exception())
        sys.stderr.flush()
    console = output_console()  # the terminal's width, also into a pipe; 160 columns with none
    run_with_progress(run.trace)  # the pass, with a progress bar when it takes a while
    mode = comment_mode(options)
    view = view_from_options(run.trace, options)  # the flat table, or the tree/summary asked for
    diagnostics = run.trace.diagnostics  # the failure explained, then the device lints
    if mode is None or run.exception is not None:
        print_views(console, view)
    exit_code = run.exit_code if mode is None else run_comment_mode(mode, run, console)
    if diagnostics:  # after the table, or after what --annotate/--write/--check printed
        print_views(console, DiagnosticsView(diagnostics))
    if options.json:
        try:
            run.trace.save_json(options.json)  # streamed: also a million ops
        except OSError as error:  # it became unwritable while the script ran
            print(
                f"shapetrace: --json {options.json}: cannot write it ({error.strerror or error})",
                file=sys.stderr,
            )
            return 2
        console.print(f"[dim]trace written to {options.json}[/dim]")
    write_exports(run.trace, view, options, console)
    if exit_code == 0 and run.trace.contracts:  # a contract violated: the run is not a success
        return 1
    return exit_code


def json_target_problem(target: str | None) -> str | None:
    """Why ``--json target`` cannot be written, checked before the script runs (so that a long
    run is not lost), else ``None``. The check opens the file for writing without truncating
    it, and removes it again if it created it."""
    if target is None:
        return None
    path = Path(target)
    folder = path.resolve().parent
    if not folder.is_dir():
        return f"--json {target}: no such directory: {folder}"
    if path.is_dir():
        return f"--json {target}: is a directory"
    existed = path.exists()
    if existed and not path.stat().st_mode & 0o222:
        return f"--json {target}: it is read-only"
    try:  # non-blocking: a FIFO nobody reads fails here instead of waiting (/dev/stdout is fine)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666))
    except OSError as error:
        return f"--json {target}: cannot write it ({error.strerror or error})"
    if not existed:
        path.unlink()
    return None
