"""Where a tensor's dims line up with a bigger shape's, for the fixes that give it the axes it
lacks: a (B,) timestep against (B, C, H, W) is ``t[:, None, None, None]``, a (B, N) padding
mask against scores (B, h, N, N) is ``mask[:, None, None, :]``."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations


def broadcast(*shapes: Sequence[int]) -> tuple[int, ...] | None:
    """The shape ``shapes`` broadcast to (dims compared right to left, equal or 1), or ``None``
    when they do not (``torch.broadcast_shapes`` without its imports and exceptions)."""
    result: list[int] = []
    for column in range(1, max((len(s) for s in shapes), default=0) + 1):
        sizes = {s[-column] for s in shapes if len(s) >= column} - {1}
        if len(sizes) > 1:
            return None
        result.append(sizes.pop() if sizes else 1)
    return tuple(reversed(result))


def _named(label: str) -> bool:
    return not label.lstrip("-").isdigit()


def _matches(size: int, label: str, big_size: int, big_label: str) -> bool:
    if size != big_size:
        return False
    if _named(label) and _named(big_label):
        return label.rstrip("?") == big_label.rstrip("?")
    return True


def placement(small: Sequence[int], big: Sequence[int], small_labels: Sequence[str] | None = None,
              big_labels: Sequence[str] | None = None) -> tuple[int, ...] | None:  # fmt: skip
    """The dims of ``big`` that ``small``'s dims are (increasing positions), chosen among all
    that match by size (and by name, where both have one): the leading dims if they match, else
    one that keeps the first dim first and the last dim last, else the leftmost. ``None`` when
    none matches, or when the only match is the right-aligned one broadcasting already uses."""
    r, n = len(small), len(big)
    if not 0 < r < n or r > 6 or n > 8:
        return None
    small_labels = list(small_labels or [str(s) for s in small])
    big_labels = list(big_labels or [str(s) for s in big])
    found = [
        positions for positions in combinations(range(n), r)
        if all(_matches(small[i], small_labels[i], big[p], big_labels[p]) for i, p in enumerate(positions))
    ]  # fmt: skip
    found = [p for p in found if p != tuple(range(n - r, n))]
    if not found:
        return None
    prefix = tuple(range(r))
    if prefix in found:
        return prefix
    ends = [p for p in found if p[0] == 0 and p[-1] == n - 1]
    return ends[0] if ends else found[0]


def index_text(positions: Sequence[int], ndim: int) -> str:
    """``[:, None, None, None]``: the indexing that puts dims at ``positions`` of ``ndim``
    (leading dims before the first position are left to broadcasting)."""
    parts = [":" if d in positions else "None" for d in range(positions[0], ndim)]
    return "[" + ", ".join(parts) + "]"


def missing(positions: Sequence[int], ndim: int) -> list[int]:
    """The dims from the first placed one to the last that the placed tensor lacks."""
    return [d for d in range(positions[0], ndim) if d not in positions]


def placed_shape(shape: Sequence[int], positions: Sequence[int], ndim: int) -> tuple[int, ...]:
    """The shape after :func:`index_text`'s indexing."""
    out, k = [], 0
    for d in range(positions[0], ndim):
        if d in positions:
            out.append(shape[k])
            k += 1
        else:
            out.append(1)
    return tuple(out)
