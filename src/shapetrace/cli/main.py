"""``shapetrace [--json FILE] SCRIPT [ARGS...]``: run a script, trace every op, print the table."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from shapetrace.cli.runner import ScriptNotRunnable, run_script


def terminal_console() -> Console:
    """Rich console for the CLI: the terminal's width, or 160 columns in a log or pipe."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=160)
    return console


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shapetrace",
        description="Run a Python script as __main__, record every torch op and module call, "
        "and print each op's line, module and output shape.",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write the trace as JSON (schema shapetrace.trace/1)"
    )
    parser.add_argument("script", help="the Python script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        run = run_script(options.script, options.args)
    except ScriptNotRunnable as error:
        print(error, file=sys.stderr)
        return 2
    sys.stdout.flush()
    if run.exception is not None:
        sys.stderr.write(run.format_exception())
        sys.stderr.flush()
    console = terminal_console()
    console.print(run.trace.table())
    if options.json:
        Path(options.json).write_text(run.trace.to_json())
        console.print(f"[dim]trace written to {options.json}[/dim]")
    return run.exit_code
