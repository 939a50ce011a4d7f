"""Helpers for the shape-comment tests (fixtures are in conftest.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

from shapetrace.cli.runner import run_script

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_NAMES = sorted(path.stem for path in EXAMPLES.glob("*.py"))


def line_of(path: Path, needle: str) -> int:
    """The number of the only line of ``path`` containing ``needle``."""
    found = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    assert len(found) == 1, (needle, found)
    return found[0]


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


# The symbolic pass's time budget in these tests: the shared test machine can be slow, and a pass
# cut short by its budget writes numbers where the comments have names.
BUDGET = 600.0


def traced_script(path: Path):
    """The trace of running ``path`` as ``__main__``."""
    run = run_script(path, symbolic_budget=BUDGET)
    assert run.exception is None, run.format_exception()
    return run.trace


def with_exprs(
    t, exprs: dict[tuple[int, ...], str], dims: dict[str, int], specialized: dict[str, int] = None
):
    """``t`` as the symbolic pass would leave it: every tensor whose concrete shape is a key of
    ``exprs`` gets that ``expr``, and the trace gets ``dims`` and ``specializations`` (dim -> the
    number torch fixed it to)."""

    def meta(m):
        return dataclasses.replace(m, expr=exprs.get(tuple(m.shape), m.expr))

    def metas(ms):
        return tuple(meta(m) for m in ms)

    return SimpleNamespace(
        ops=[dataclasses.replace(op, inputs=metas(op.inputs), outputs=metas(op.outputs)) for op in t.ops],
        modules=[dataclasses.replace(c, inputs=metas(c.inputs), outputs=metas(c.outputs)) for c in t.modules],
        dims=dims,
        specializations=[
            SimpleNamespace(dim=dim, value=value, expr=str(value))
            for dim, value in (specialized or {}).items()
        ],
        error=t.error,
    )


def concrete(t):
    """``t`` as if no symbolic pass ran: no ``expr``, no ``dims`` (the concrete fallback)."""
    plain = with_exprs(t, {}, {})
    for records in (plain.ops, plain.modules):
        records[:] = [
            dataclasses.replace(
                r,
                inputs=tuple(dataclasses.replace(m, expr=None) for m in r.inputs),
                outputs=tuple(dataclasses.replace(m, expr=None) for m in r.outputs),
            )
            for r in records
        ]
    return plain


def one_of(out: str, *lines: str) -> bool:
    """Whether ``out`` has one of ``lines`` (a concrete and a symbolic spelling of one message)."""
    return bool(set(out.splitlines()) & set(lines))
