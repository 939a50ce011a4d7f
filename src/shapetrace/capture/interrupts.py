"""Ctrl-C, held back while a trace installs or removes its hooks and mode, so that an interrupt
can never leave half of them installed."""

from __future__ import annotations

import _signal
import signal
from types import FrameType, TracebackType

# signal.signal/getsignal without their IntEnum conversions: converting a Python handler raises and
# catches a ValueError inside them (7 us per swap and restore, ~60 us after a forward has cooled
# the caches; every trace swaps twice). Same arguments and handlers, returned unconverted (SIG_DFL as 0).
_swap_handler, _handler = _signal.signal, _signal.getsignal


class interrupts_deferred:  # noqa: N801 (used as a function: `with interrupts_deferred():`)
    """Run the block with SIGINT deferred (main thread only; elsewhere Python delivers no
    signals): an interrupt that arrives meanwhile is delivered to the previous handler after it.
    A handler installed outside Python cannot be restored: then nothing is deferred. A class, not
    a generator: every trace enters two (contextlib's machinery cost more than the swaps)."""

    __slots__ = ("_pending", "_previous")

    def __enter__(self) -> None:
        self._previous = None  # the handler to put back; None: nothing was swapped
        if _handler(signal.SIGINT) is None:  # installed outside Python: it could not be put back
            return
        pending: list[tuple[int, FrameType | None]] = []
        self._pending = pending
        try:
            previous = _swap_handler(signal.SIGINT, lambda signum, frame: pending.append((signum, frame)))
        except ValueError:  # not the main thread, or signals unavailable here (an embedded interpreter)
            return
        self._previous = previous

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        previous = self._previous
        if previous is None:
            return
        _swap_handler(signal.SIGINT, previous)
        pending = self._pending
        if pending and callable(previous):
            previous(*pending[0])  # Python's default handler raises KeyboardInterrupt here
        elif pending and previous == signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)
