"""Ctrl-C, held back while a trace installs or removes its hooks and mode, so that an interrupt
can never leave half of them installed."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Run the block with SIGINT deferred (main thread only; elsewhere Python delivers no
    signals): an interrupt that arrives meanwhile is delivered to the previous handler after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[tuple[int, FrameType | None]] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append((signum, frame)))
    except ValueError:  # signals unavailable here (e.g. an embedded interpreter)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending and callable(previous):
            previous(*pending[0])  # Python's default handler raises KeyboardInterrupt here
        elif pending and previous == signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)
