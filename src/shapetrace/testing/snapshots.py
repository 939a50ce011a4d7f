"""Shape snapshots: each traced test's ops and output shapes in a text file next to the tests.

``tests/test_models.py`` keeps its snapshots in ``tests/__shapes__/test_models.txt``::

    # shapetrace shape snapshots of test_models.py ...

    ## test_patch_embed
    trace: PatchEmbedding
      conv2d        patch_embed               (B, 512, H//32, W//32)
      flatten       PatchEmbedding            (B, 512, (H//32)*(W//32))

One ``## test`` entry per test (its node id within the file), one block per traced call, one
row per op: name, module, output shapes (symbolic where the trace has them). Nothing in it
depends on the machine or the run (no ids, paths, sizes of memory), so the file diffs cleanly.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shapetrace.trace import Trace

DIRECTORY = "__shapes__"
ENTRY = "## "
_HEADER = (
    "# shapetrace shape snapshots of {name}: each test's traced calls, one row per op\n"
    "# (op, module, output shapes). Checked by pytest --shapetrace-snapshot; rewritten by\n"
    "# pytest --shapetrace-update.\n"
)
_OP_WIDTH, _MODULE_WIDTH = 12, 24


class SnapshotError(Exception):
    """A snapshot file cannot be read; the message says which and why."""


def snapshot_path(test_file: Path) -> Path:
    """Where the snapshots of ``test_file`` live: ``__shapes__/<test file's stem>.txt`` beside it."""
    return test_file.parent / DIRECTORY / f"{test_file.stem}.txt"


def render(traces: Sequence[tuple[str, Trace]]) -> str:
    """A test's entry: for each traced call (``label``, trace), its ops and output shapes."""
    lines = []
    for number, (label, recorded) in enumerate(traces, 1):
        lines.append(f"trace {number}: {label}" if len(traces) > 1 else f"trace: {label}")
        for op in recorded.ops:
            shapes = "raised" if op.failed else ", ".join(meta.shape_text() for meta in op.outputs) or "-"
            module = recorded.module_label(op.module_index) or "-"
            lines.append(f"  {op.op:<{_OP_WIDTH}} {module:<{_MODULE_WIDTH}} {shapes}".rstrip())
        if not recorded.ops:
            lines.append("  (no ops)")
    return "\n".join(lines)


@dataclass
class SnapshotFile:
    """The entries of one snapshot file, in file order (``test -> text``)."""

    path: Path
    entries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> SnapshotFile:
        if not path.exists():
            return cls(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SnapshotError(f"{path}: cannot read it ({error})") from None
        entries: dict[str, list[str]] = {}
        current: list[str] | None = None
        for number, line in enumerate(text.splitlines(), 1):
            if line.startswith(ENTRY):
                current = entries.setdefault(line[len(ENTRY) :].strip(), [])
            elif current is not None:
                current.append(line)
            elif line.strip() and not line.startswith("#"):
                raise SnapshotError(f"{path}:{number}: expected '## <test>' before any snapshot row")
        return cls(path, {name: "\n".join(rows).strip("\n") for name, rows in entries.items()})

    def dump(self, test_file_name: str) -> str:
        parts = [_HEADER.format(name=test_file_name)]
        for name, text in self.entries.items():
            parts.append(f"\n{ENTRY}{name}\n{text}\n")
        return "".join(parts)

    def save(self, test_file_name: str) -> None:
        if not self.entries:
            if self.path.exists():
                self.path.unlink()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.dump(test_file_name), encoding="utf-8")


def diff(stored: str, current: str, where: str) -> str:
    """A unified diff from the stored entry to this run's."""
    lines = difflib.unified_diff(
        stored.splitlines(), current.splitlines(), f"{where} (snapshot)", "this run", lineterm="", n=2
    )
    return "\n".join(lines)


@dataclass
class _Change:
    test_file: Path
    name: str
    text: str | None  # None: remove the entry


class Snapshots:
    """The snapshot checks of one pytest session: compares each traced test with its stored
    entry, and writes new, updated and removed entries when the session ends."""

    def __init__(self, update: bool, root: Path) -> None:
        self.update = update
        self.root = root
        self._files: dict[Path, SnapshotFile] = {}
        self._changes: list[_Change] = []
        self.written = self.updated = self.removed = 0

    def check(self, test_file: Path, name: str, traces: Sequence[tuple[str, Trace]]) -> str | None:
        """``None`` when the test's shapes are the stored ones (or were recorded now), else the
        failure message with the diff."""
        current = render(traces)
        stored = self._file(test_file).entries.get(name)
        if stored == current:
            return None
        if stored is None or self.update:
            self._changes.append(_Change(test_file, name, current))
            return None
        where = f"{self._relative(snapshot_path(test_file))}, {ENTRY}{name}"
        return (
            f"shape snapshot of {name} changed:\n{diff(stored, current, where)}\n"
            "Accept the new shapes with: pytest --shapetrace-update"
        )

    def forget(self, test_file: Path, name: str) -> None:
        """With ``update``: a test that ran and traced nothing loses its entry."""
        if self.update and name in self._file(test_file).entries:
            self._changes.append(_Change(test_file, name, None))

    def finish(self) -> None:
        """Write the changes, each file read again first (another process may have written it)."""
        by_file: dict[Path, list[_Change]] = {}
        for change in self._changes:
            by_file.setdefault(change.test_file, []).append(change)
        for test_file, changes in by_file.items():
            snapshot = SnapshotFile.load(snapshot_path(test_file))
            for change in changes:
                before = snapshot.entries.get(change.name)
                if change.text is None:
                    self.removed += snapshot.entries.pop(change.name, None) is not None
                elif before != change.text:
                    snapshot.entries[change.name] = change.text
                    if before is None:
                        self.written += 1
                    else:
                        self.updated += 1
            snapshot.save(test_file.name)
        self._changes.clear()

    def summary(self) -> str:
        parts = [
            f"{count} {what}"
            for count, what in (
                (self.written, "written"),
                (self.updated, "updated"),
                (self.removed, "removed"),
            )
            if count
        ]
        return f"shapetrace: shape snapshots {', '.join(parts)}" if parts else ""

    def _file(self, test_file: Path) -> SnapshotFile:
        path = snapshot_path(test_file)
        if path not in self._files:
            self._files[path] = SnapshotFile.load(path)
        return self._files[path]

    def _relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)
