"""Pausing Python's cyclic garbage collector while many acyclic objects are made at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while records, diagnostics or a view's rows are built
    from a trace: they form no cycles, and each collection would rescan the whole growing trace
    (measured: records 2.5x, diagnostics 5.5x faster, the table ~30% faster without it). The
    collector is on again afterwards if it was before, also when building fails."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
