"""``t.annotate()`` / ``--annotate``: the traced source with each line's output shape as an
aligned ``# (B, C, H*W)`` comment."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, RenderResult
from rich.rule import Rule
from rich.syntax import Syntax
from rich.text import Text

from shapetrace.comments.files import TracedFile, traced_files
from shapetrace.comments.grammar import parse_comment
from shapetrace.comments.own_names import traced_line_text
from shapetrace.comments.runs import Run, render_runs

if TYPE_CHECKING:
    from shapetrace.trace import Trace

GAP = 2  # spaces between the longest code line of a block and its comments, as in the seeds


def line_shape(runs: Sequence[Run]) -> str | None:
    """The comment text for a line's runs (``None`` when it produced no tensor); ``raised``
    is added when a run of the line raised."""
    text = render_runs([run for run in runs if run.outputs and not run.failed])
    if any(run.failed for run in runs):
        text = f"{text} | raised" if text else "raised"
    return text or None


@dataclass(frozen=True)
class AnnotatedLine:
    """One source line: unchanged (``shape`` is ``None``) or its code, then at ``column`` the
    comment ``# shape`` and ``tail`` (prose kept from the owned comment, or the user's own comment)."""

    number: int
    code: str
    shape: str | None = None
    column: int = 0
    tail: str = ""

    @property
    def text(self) -> str:
        if self.shape is None:
            return self.code
        return f"{self.code.ljust(self.column)}# {self.shape}{self.tail}"


@dataclass
class AnnotatedFile:
    path: str
    display: str
    lines: list[AnnotatedLine]

    @property
    def text(self) -> str:
        return "".join(line.text + "\n" for line in self.lines)


@dataclass
class Annotation:
    """The annotated source of every traced user file: ``str()`` is plain text, and it is a
    rich renderable (a rule with each file's path, code highlighted, shapes in bold cyan)."""

    files: list[AnnotatedFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if len(self.files) == 1 and not self.skipped:
            return self.files[0].text
        parts = [f"# --- {f.display}\n{f.text}" for f in self.files]
        return "\n".join(parts + self.skipped)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for file in self.files:
            yield Rule(file.display, style="dim", align="left")
            yield _highlighted(file)
        for message in self.skipped:
            yield Text(message, style="yellow")


def _highlighted(file: AnnotatedFile) -> Text:
    syntax = Syntax("", "python", theme="ansi_dark", background_color="default")
    text = syntax.highlight(file.text)
    text.rstrip()
    offset = 0
    for line in file.lines:
        if line.shape is not None:
            start = offset + max(len(line.code), line.column)
            text.stylize("bold cyan", start, start + 2 + len(line.shape))
        offset += len(line.text) + 1
    return text


def annotate(trace: Trace) -> Annotation:
    """Every traced user file, each line that ran with its shape comment (docs/comments.md)."""
    files, skipped = traced_files(trace)
    return Annotation([annotate_file(traced) for traced in files], skipped)


def annotate_file(traced: TracedFile) -> AnnotatedFile:
    source = traced.source
    shapes: dict[int, str] = {}
    for line, runs in traced.runs.items():
        if line not in source.commentable:
            continue
        # in the function's own names when one text covers the runs, else every alternative
        own = None if any(run.failed for run in runs) else traced_line_text(traced, line).text
        shape = own or line_shape(runs)
        if shape is not None:
            shapes[line] = shape
    columns = aligned_columns(source.code, source.scope, shapes)
    lines = []
    for number in range(1, len(source.lines) + 1):
        shape = shapes.get(number)
        if shape is None:
            lines.append(AnnotatedLine(number, source.line_text(number)))
            continue
        tail = ""
        existing = source.comments.get(number)
        if existing is not None:
            owned = parse_comment(existing[1])
            tail = owned.rest if owned is not None else f"  {existing[1]}"
        lines.append(AnnotatedLine(number, source.code(number), shape, columns[number], tail))
    return AnnotatedFile(source.path, traced.display, lines)


def aligned_columns(
    code: Callable[[int], str], scope: Callable[[int], int], lines: Iterable[int]
) -> dict[int, int]:
    """The comment column of each of ``lines``: within one function (or class body, or module
    level) every comment starts ``GAP`` spaces after its longest commented code line."""
    groups: dict[int, list[int]] = defaultdict(list)
    for line in lines:
        groups[scope(line)].append(line)
    columns = {}
    for members in groups.values():
        column = max(len(code(line)) for line in members) + GAP
        columns.update(dict.fromkeys(members, column))
    return columns
