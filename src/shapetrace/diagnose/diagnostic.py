"""What a diagnosis says: plain data, rendered by :mod:`shapetrace.render.diagnostics`, the
exception note and the JSON document."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from shapetrace.capture.records import TensorMeta
from shapetrace.capture.source import display_path

ERROR, WARNING = "error", "warning"
# Lints about devices (the others are about shapes and how the model is built).
DEVICE_LINTS = frozenset(
    {"factory-without-device", "unregistered-tensor", "mixed-devices", "host-sync", "cpu-meets-device"}
)
_NOTE_WIDTH = 100


@dataclass(frozen=True)
class Origin:
    """Where a tensor came from: the op that made it (``factory``, ``moved`` by ``.cpu()``/``.to()``,
    or any other ``op``), or a ``parameter``/``buffer``/``attribute`` of a module, or an ``input``
    of a module call; ``unknown`` when the trace did not see it being made."""

    kind: str
    text: str
    op_index: int | None = None
    file: str | None = None
    line: int | None = None
    key: tuple = ()  # identifies the origin across diagnostics (for de-duplication)
    detail: str = ""  # for a factory: what its device= says
    name: str = ""  # for an input: the argument as the caller wrote it (`image` in `model(image)`)


@dataclass(frozen=True)
class Operand:
    """One tensor operand of the op a diagnostic is about."""

    role: str
    meta: TensorMeta
    origin: Origin | None = None


@dataclass(frozen=True)
class Edit:
    """One change to a source file: the text from (``line``, ``col``) to (``end_line``,
    ``end_col``) becomes ``text`` (lines from 1, columns in characters from 0)."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int
    text: str


def apply_edits(source: str, edits: tuple[Edit, ...] | list[Edit]) -> str:
    """``source`` with ``edits`` applied (spans that do not overlap, any order)."""
    starts = [0]
    for text in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(text))
    for edit in sorted(edits, key=lambda e: (e.line, e.col), reverse=True):
        start = starts[edit.line - 1] + edit.col
        end = starts[edit.end_line - 1] + edit.end_col
        source = source[:start] + edit.text + source[end:]
    return source


@dataclass(frozen=True)
class Diagnostic:
    """One finding: the explained failure (``severity="error"``) or a device lint (``"warning"``).

    ``kind`` names the cause (``matmul-shape``, ``device-mismatch``, ``host-sync``, ... — see
    docs/diagnostics.md); ``file``/``line``/``code`` are the user's line; ``message`` explains in
    plain words, ``fix`` says what to change; ``fix_checked`` is true when the fix was applied to
    the failing op (module call, construction) and re-run on meta tensors, and passed; ``edits``
    are the fix as source changes, when it is code. ``details`` are pre-aligned lines (shapes
    right-aligned, the bad dim marked); ``operands`` are the op's tensors with their origins.
    """

    kind: str
    severity: str
    message: str
    file: str
    line: int
    op_index: int | None
    code: str = ""
    op: str = ""
    module: str | None = None
    fix: str | None = None
    fix_checked: bool = False
    edits: tuple[Edit, ...] = ()
    details: tuple[str, ...] = ()
    operands: tuple[Operand, ...] = ()
    count: int = 1
    subjects: tuple[tuple, ...] = field(default=(), compare=False)

    @property
    def fix_label(self) -> str:
        """``Fix (checked)`` for a fix that was re-run and passed, else ``Suggestion``."""
        return "Fix (checked)" if self.fix_checked else "Suggestion"

    @property
    def location(self) -> str:
        return f"{display_path(self.file)}:{self.line}"

    def note(self) -> str:
        """Plain text for a traceback (PEP 678 note)."""
        where = f" in {self.module}" if self.module else ""
        what = f"`{self.op}`{where} at " if self.op else ""
        lines = [f"shapetrace: {self.kind}: {what}{self.location}"]
        if self.code:
            lines.append(f"    {self.code}")
        width = max((len(o.role) for o in self.operands), default=0)
        for o in self.operands:
            origin = f"  <- {o.origin.text}" if o.origin else ""
            lines.append(
                f"  {o.role:<{width}}  {o.meta.shape_text(named_only=True)} {o.meta.dtype_name} {o.meta.device_name}{origin}"
            )
        lines.append(textwrap.fill(self.message, _NOTE_WIDTH, break_long_words=False, break_on_hyphens=False))
        lines.extend(f"    {d}" for d in self.details)
        if self.fix:
            lines.append(textwrap.fill(f"{self.fix_label}: {self.fix}", _NOTE_WIDTH, subsequent_indent="     ",
                                       break_long_words=False, break_on_hyphens=False))  # fmt: skip
        return "\n".join(lines)
