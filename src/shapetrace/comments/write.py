"""``--write``: insert the shape comments a line lacks and update the stale ones, in place.

Only owned comments change (see :mod:`shapetrace.comments.grammar`); fresh, unchecked and
foreign comments, code, blank lines, line endings and encoding are kept byte for byte. A file
is written only when it changes, only when its code (its AST) is unchanged by the edit, never
when it is read-only, through a temporary file renamed over it (a file with several hard links
is rewritten in place, so the links stay one file).
"""

from __future__ import annotations

import ast
import contextlib
import linecache
import os
import signal
import stat
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shapetrace.comments.annotate import GAP
from shapetrace.comments.check import Status, check_line
from shapetrace.comments.files import TracedFile, traced_files
from shapetrace.comments.grammar import ShapeComment, parse_comment
from shapetrace.comments.own_names import traced_line_text
from shapetrace.comments.source import SourceFile

if TYPE_CHECKING:
    from shapetrace.trace import Trace


class WriteRefused(Exception):
    """``--write`` was asked to write from a trace it must not write from."""


@dataclass(frozen=True)
class LineChange:
    """One changed line: ``added``, ``updated`` (``old`` -> ``new``) or ``realigned``."""

    line: int
    kind: str
    new: str
    old: str = ""

    def message(self, file: str) -> str:
        if self.kind == "added":
            return f"{file}:{self.line}: added # {self.new}"
        if self.kind == "updated":
            return f"{file}:{self.line}: updated # {self.old} -> # {self.new}"
        return f"{file}:{self.line}: realigned # {self.new}"


@dataclass
class FileEdit:
    """The new text of one file and the lines that changed; ``notes``: lines left without a
    comment, and why."""

    source: SourceFile
    display: str
    text: str
    changes: list[LineChange]
    notes: list[str] = field(default_factory=list)


@dataclass
class WriteReport:
    """Per written file its changed lines; ``notes``: lines that got no comment, and why;
    ``skipped``: traced files not edited, and why; ``failed``: edits that could not be written."""

    written: list[FileEdit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [change.message(edit.display) for edit in self.written for change in edit.changes]
        out.extend(self.notes + self.skipped + self.failed)
        changed = sum(len(edit.changes) for edit in self.written)
        if changed:
            files = f"{len(self.written)} file" + ("" if len(self.written) == 1 else "s")
            lines = f"{changed} line" + ("" if changed == 1 else "s")
            out.append(f"shapetrace --write: {lines} changed in {files}")
        else:
            out.append("shapetrace --write: no changes")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def write_comments(trace: Trace) -> WriteReport:
    """Insert missing and update stale shape comments in the traced user files (docs/comments.md)."""
    if trace.error is not None:
        raise WriteRefused("the traced code raised: nothing written")
    files, skipped = traced_files(trace)
    report = WriteReport(skipped=skipped)
    for traced in files:
        edit = plan_file(traced)
        report.notes.extend(edit.notes)
        if not edit.changes:
            continue
        try:
            _replace(edit)
        except (OSError, ValueError) as error:
            report.failed.append(f"{edit.display}: not written: {error}")
            continue
        report.written.append(edit)
    return report


def plan_file(traced: TracedFile) -> FileEdit:
    """The edited text of one file (``changes`` empty when nothing changes)."""
    source = traced.source
    owned: dict[int, ShapeComment] = {}
    for line, (_, text) in source.comments.items():
        parsed = parse_comment(text)
        if parsed is not None:
            owned[line] = parsed
    added: dict[int, str] = {}
    updated: dict[int, str] = {}
    notes: list[str] = []
    for line, runs in sorted(traced.runs.items()):
        if line not in source.commentable or any(run.failed for run in runs):
            continue
        if line in source.comments and (line not in owned or check_line(traced, line, owned[line]).status
                                        is not Status.STALE):  # fmt: skip
            continue
        found = traced_line_text(traced, line)
        if found.text is None:
            if found.note:
                notes.append(f"{traced.display}:{line}: no comment: {found.note}")
        elif line not in source.comments:
            added[line] = found.text
        else:
            updated[line] = found.text
    if not added and not updated:
        return FileEdit(source, traced.display, source.text, [], notes)
    columns, realigned = _columns(source, owned, added)
    texts: dict[int, str] = {}
    changes = []
    for line in sorted({*added, *updated, *realigned}):
        code = source.code(line)
        if line in added:
            texts[line] = f"{code.ljust(columns[line])}# {added[line]}"
            changes.append(LineChange(line, "added", added[line]))
            continue
        column, comment = source.comments[line]
        parsed = owned[line]
        new_comment = f"# {updated[line]}{parsed.rest}" if line in updated else comment
        prefix = code.ljust(columns[line]) if line in realigned else source.line_text(line)[:column]
        texts[line] = prefix + new_comment
        if line in updated:
            changes.append(LineChange(line, "updated", updated[line], parsed.shape_text))
        else:
            changes.append(LineChange(line, "realigned", parsed.shape_text))
    text = "".join(
        texts[number] + source.ending(number) if number in texts else line
        for number, line in enumerate(source.lines, start=1)
    )
    return FileEdit(source, traced.display, text, changes, notes)


def _columns(
    source: SourceFile, owned: dict[int, ShapeComment], added: dict[int, str]
) -> tuple[dict[int, int], set[int]]:
    """Columns for new comments, and the owned comments that move with them: a block (function,
    class body, module level) whose comments share one column keeps it unless a new line is too
    long for it, then the whole block moves; otherwise new comments go ``GAP`` spaces after the
    block's longest commented line."""
    blocks: dict[int, list[int]] = defaultdict(list)
    for line in {*owned, *added}:
        blocks[source.scope(line)].append(line)
    columns: dict[int, int] = {}
    realigned: set[int] = set()
    for lines in blocks.values():
        new = [line for line in lines if line in added]
        if not new:
            continue
        need = max(len(source.code(line)) for line in lines) + GAP
        existing = {source.comments[line][0] for line in lines if line in owned}
        if len(existing) == 1:
            column = max(existing.pop(), need)
            moved = [line for line in lines if line in owned and source.comments[line][0] != column]
            realigned.update(moved)
            columns.update(dict.fromkeys(lines, column))
        else:
            columns.update(dict.fromkeys(new, need))
    return columns, realigned


def _replace(edit: FileEdit) -> None:
    """Write ``edit`` over its file, after checking that the code is unchanged, that the file is
    writable and that it was not modified meanwhile. A file with one link is replaced by a
    temporary file renamed over it; a file with several links is rewritten in place, so that
    every link sees the edit. Interrupts arriving meanwhile wait until the file is whole."""
    source = edit.source
    if "\r" in edit.text.replace("\r\n", ""):
        raise ValueError("lines ending in a bare \\r are not supported")
    try:
        same_code = ast.dump(ast.parse(edit.text)) == ast.dump(source.tree)
    except SyntaxError:
        same_code = False
    if not same_code:
        raise ValueError("the edit would change the code (a shapetrace bug): file left as it was")
    data = edit.text.encode(source.encoding)
    path = os.path.realpath(source.path)
    status = os.stat(path)
    if not stat.S_ISREG(status.st_mode):
        raise ValueError("not a regular file")
    if not status.st_mode & 0o222 or not os.access(path, os.W_OK):
        raise ValueError(f"it is read-only (mode {stat.S_IMODE(status.st_mode):04o}): left as it was")
    with _interrupts_deferred():
        with open(path, "rb") as f:
            if f.read() != source.data:
                raise ValueError("the file changed while shapetrace ran")
        if status.st_nlink > 1:
            _write_in_place(path, data, source.data)
        else:
            _write_through_temporary(path, data, status)
    linecache.checkcache(source.path)


def _write_through_temporary(path: str, data: bytes, status: os.stat_result) -> None:
    """Write ``data`` to a hidden file beside ``path`` with its mode and owner, then rename it over
    ``path``; on any failure the hidden file is removed and ``path`` is left as it was."""
    fd, temp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".shapetrace", dir=os.path.dirname(path)
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, stat.S_IMODE(status.st_mode))
        with contextlib.suppress(OSError):  # only root may give a file away: kept where allowed
            os.chown(temp, status.st_uid, status.st_gid)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _write_in_place(path: str, data: bytes, original: bytes) -> None:
    """Rewrite ``path`` through its own inode, so that its other hard links keep seeing it; on a
    failure (a full disk) its ``original`` bytes are written back."""
    with open(path, "r+b") as f:
        try:
            f.write(data)
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            f.seek(0)
            f.write(original)
            f.truncate()
            f.flush()
            raise


_DEFERRED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP inside the block and deliver them after it, to the handlers
    they had, so that a killed ``--write`` leaves each file either as it was or fully written and
    no temporary file behind. Only the main thread receives signals: elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for signum in _DEFERRED_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is None:  # installed outside Python: cannot be restored, so left alone
            continue
        previous[signum] = handler
        signal.signal(signum, lambda number, _frame: received.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)
