"""The IPython extension: ``%load_ext shapetrace``, then ``%%shapetrace`` traces a cell and
``%shapetrace STATEMENT`` one statement, and the trace shows below as the command line shows it
(with the view options of the command line). IPython is never imported here: the shell passed to
:func:`load_ipython_extension` is all this module uses.
"""

from __future__ import annotations

import argparse
import ast
import re
import shlex
import sys
from typing import Any

from shapetrace.cli.view_options import add_view_options, check_view_options, view_from_options, write_exports
from shapetrace.contracts import ON_VIOLATION
from shapetrace.render.console import output_console, print_views
from shapetrace.render.diagnostics import DiagnosticsView
from shapetrace.symbolic.spec import DimsError, parse_cli_dims
from shapetrace.trace import Trace, trace

USAGE = """\
%%shapetrace [options]     trace the rest of the cell
%shapetrace [options] STATEMENT
                           trace one statement, e.g. %shapetrace y = model(x)"""


class MagicUsageError(Exception):
    """Options the magic cannot use: shown as one line, nothing runs."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise MagicUsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%shapetrace", usage=USAGE, add_help=False)
    parser.add_argument("-o", "--out", metavar="NAME", help="keep the Trace in the variable NAME")
    parser.add_argument(
        "--model", metavar="NAME", help="the model (a variable) its submodules are named after"
    )
    parser.add_argument("--dims", metavar="SPEC", action="append", default=[], help="as on the command line")
    parser.add_argument("--no-symbolic", action="store_true", help="concrete sizes only")
    parser.add_argument("--on-violation", choices=ON_VIOLATION, default="warn")
    add_view_options(parser)
    return parser


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext shapetrace``: registers ``%shapetrace`` and ``%%shapetrace``."""

    def shapetrace(line: str, cell: str | None = None) -> None:
        """Trace a cell (``%%shapetrace``) or a statement (``%shapetrace y = model(x)``) and show
        the trace; the options are the command line's (``--tree``, ``--depth 2``, ``--module
        'blocks.*'``, ``--graph f.svg``, ...), plus ``-o NAME`` to keep the Trace and ``--model NAME``."""
        __tracebackhide__ = True  # a traceback shows the user's cell, not this magic
        try:
            options, source = parse(line, cell)
        except MagicUsageError as error:
            print(f"%shapetrace: {error}\n{USAGE}")
            return
        run(ipython, options, source, cell is not None)

    ipython.register_magic_function(shapetrace, magic_kind="line_cell", magic_name="shapetrace")


def parse(line: str, cell: str | None) -> tuple[argparse.Namespace, str]:
    """The options and the code to trace: the cell, or what follows the options on the line."""
    parser = build_parser()
    if cell is None:
        line, statement = split_statement(parser, line)
        if not statement.strip():
            raise MagicUsageError("no statement to trace")
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise MagicUsageError(str(error)) from None
    options = parser.parse_args(words)
    problem = check_view_options(options)
    if problem:
        raise MagicUsageError(problem)
    return options, cell if cell is not None else statement


def split_statement(parser: argparse.ArgumentParser, line: str) -> tuple[str, str]:
    """``--tree y = model(x)`` as ``("--tree", "y = model(x)")``: the options are the leading
    words that name one (with their value), the statement is the rest of the line, untouched."""
    takes_value = {
        name: action.nargs != 0 for action in parser._actions for name in action.option_strings
    }  # fmt: skip
    position = 0
    words = list(re.finditer(r"\S+", line))
    index = 0
    while index < len(words):
        word = words[index].group()
        name = word.split("=", 1)[0]
        if not word.startswith("-") or name not in takes_value:
            break
        index += 2 if takes_value[name] and "=" not in word else 1
        position = words[min(index, len(words)) - 1].end()
    return line[:position], line[position:].strip()


def run(ipython: Any, options: argparse.Namespace, source: str, is_cell: bool) -> None:
    """Run ``source`` in the user's namespace under a trace, then show the view (and the
    diagnosis); an exception the code raised is raised again after the trace is shown."""
    __tracebackhide__ = True
    namespace = ipython.user_ns
    try:
        dims = parse_cli_dims(options.dims)
    except DimsError as error:
        print(f"%shapetrace: --dims: {error}")
        return
    model = None
    if options.model:
        if options.model not in namespace:
            print(f"%shapetrace: --model {options.model}: no such variable")
            return
        model = namespace[options.model]
    source = ipython.transform_cell(source)
    code = ("\n" if is_cell else "") + source  # the cell's first line is %%shapetrace: lines match the cell
    filename = ipython.compile.cache(code, running_cell(ipython), raw_code=code)  # shows as In [n]
    tree = ast.parse(code, filename)
    tracer = trace(model, dims=dims, symbolic=not options.no_symbolic, on_violation=options.on_violation)
    failure: Exception | None = None
    try:
        with tracer as traced:
            exec(compile(tree, filename, "exec"), namespace)  # the user's own cell
    except Exception as error:  # shown with the trace, then raised again
        failure = error
    if options.out:
        namespace[options.out] = traced
    show(ipython, traced, options)
    if failure is not None:
        raise failure


def running_cell(ipython: Any) -> int:
    """The number of the cell being run: that of the innermost frame IPython compiled a cell
    for (the cell calling this magic); IPython counts from its ``execution_count`` on its own
    schedule, which differs between releases."""
    frame = sys._getframe(1)
    while frame is not None:
        named = ipython.compile.format_code_name(frame.f_code.co_filename)
        number = re.fullmatch(r"In\s*\[(\d+)\]", named[1]) if named else None
        if number:
            return int(number.group(1))
        frame = frame.f_back
    return ipython.execution_count


def show(ipython: Any, traced: Trace, options: argparse.Namespace) -> None:
    """The view in the notebook (HTML, with the diagnosis) or, in a terminal IPython, printed."""
    view = view_from_options(traced, options)
    console = output_console()
    if hasattr(ipython, "kernel"):  # a notebook: rich HTML
        ipython.display_pub.publish({"text/html": view._repr_html_(), "text/plain": repr(traced)})
    else:
        diagnosis = [DiagnosticsView(traced.diagnostics)] if traced.diagnostics else []
        print_views(console, view, *diagnosis)
    write_exports(traced, view, options, console)
