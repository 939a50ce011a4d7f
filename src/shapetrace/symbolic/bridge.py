"""One fake run: a FakeTensorMode with its own ShapeEnv, fake tensors built from canonical shapes,
sizes read back as canonical expressions, and the dims torch specialised on the way.

A fresh run is used per root module call and per replayed op, so a guard in one call (an
``nn.Upsample`` fixes every dim) does not leak into the next.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import random
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sympy
import torch
from torch import nn

from shapetrace._private import torch_symbolic as ts
from shapetrace.capture.recorder import Recorder
from shapetrace.capture.source import user_frame
from shapetrace.contracts.session import suspended as contracts_suspended
from shapetrace.symbolic.dims import Names, Shape, symbol


@dataclass
class Replacement:
    """A symbol torch replaced while running: which, by what, and where (raw)."""

    name: str
    target: sympy.Expr  # canonical
    guards_before: int
    position: int | None  # index of the recorded op running then; None: Python code between ops
    file: str  # the user's line running then
    line: int


class FakeRun:
    """Fake tensors for one call, sized by canonical expressions over ``names``."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.mode, self.env = ts.make_fake_mode()
        self._to_env: dict[sympy.Symbol, sympy.Expr] = {}
        self._from_env: dict[sympy.Symbol, sympy.Symbol] = {}
        self.replacements: list[Replacement] = []
        self.position: Callable[[], int | None] = lambda: None
        self.env.on_replacement = self._on_replacement

    # --- building fakes ------------------------------------------------------------------------

    def _env_symbol(self, canonical: sympy.Symbol) -> sympy.Expr:
        found = self._to_env.get(canonical)
        if found is None:
            value = self.names.all[canonical.name]
            found = self._to_env[canonical] = ts.named_symbol(self.env, canonical.name, value)
            if isinstance(found, sympy.Symbol):
                self._from_env[found] = canonical
        return found

    def size(self, size: Any, value: int) -> Any:
        """A SymInt (or int) for one canonical size whose value is ``value`` in this run."""
        if size is None or isinstance(size, int) or not size.free_symbols:
            return value
        expr = size.xreplace({s: self._env_symbol(s) for s in size.free_symbols})
        return ts.symint(self.env, expr, value)

    def tensor(self, shape: Shape, concrete: tuple[int, ...], dtype: torch.dtype, device: torch.device,
               requires_grad: bool = False) -> torch.Tensor:  # fmt: skip
        """A fake tensor with these canonical sizes (unknown dims take their concrete size)."""
        sizes = [self.size(s, v) for s, v in zip(shape, concrete)]
        with self.mode:
            fake = torch.empty(sizes, dtype=dtype, device=device)
            if requires_grad and (dtype.is_floating_point or dtype.is_complex):
                fake.requires_grad_(True)
        return fake

    def copy_object(self, value: Any) -> Any:
        """A deep copy of a non-tensor argument, its tensors made fake (the user's object is never
        touched by the run)."""
        with self.mode:
            return copy.deepcopy(value)

    # --- reading sizes -------------------------------------------------------------------------

    def canonical(self, size: Any) -> Any:
        """A size of a fake tensor as a canonical expression; ``None`` if it depends on data or on
        a symbol that is not a dim name."""
        expr = ts.size_expr(size)
        if isinstance(expr, int):
            return expr
        if ts.has_unbacked(expr):
            return None
        if not expr.free_symbols <= self._from_env.keys():
            return None
        return expr.xreplace(self._from_env)

    def shape(self, sizes: Any) -> Shape:
        return tuple(self.canonical(s) for s in sizes)

    # --- specialisations -----------------------------------------------------------------------

    def _on_replacement(self, env_symbol: sympy.Symbol, target: sympy.Expr, guards: int) -> None:
        canonical = self._from_env.get(env_symbol)
        if canonical is None:
            return
        target_expr = target if target.is_number else target.xreplace(self._from_env)
        if not target_expr.is_number and not target_expr.free_symbols <= set(self._from_env.values()):
            return
        caller = sys._getframe(1)
        frame = user_frame(caller)
        file, line = (frame.f_code.co_filename, frame.f_lineno) if frame else ("", 0)
        position = self.position() if _inside_op(caller, frame) else None
        self.replacements.append(Replacement(canonical.name, target_expr, guards, position, file, line))

    def guard_for(self, replacement: Replacement) -> sympy.Expr | None:
        """The guard that caused ``replacement``, in canonical symbols."""
        guards = ts.guard_exprs(self.env)
        mapping = self._from_env
        wanted = symbol(replacement.name)
        for guard in guards[replacement.guards_before :] + guards[: replacement.guards_before]:
            canonical = guard.xreplace(mapping)
            if wanted in canonical.free_symbols and canonical.free_symbols <= set(mapping.values()):
                return canonical
        return None

    @property
    def specialised(self) -> list[str]:
        """Names replaced by a number in this run."""
        return [r.name for r in self.replacements if r.target.is_number]

    # --- running user code ---------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self, grad: bool = True) -> Iterator[None]:
        """Run user code on this run's fakes, apart from everything else: no other torch mode or
        global hook, no contract check (they ran on the real tensors), output and warnings
        swallowed, random states restored."""
        with ts.isolated(), contracts_suspended(), _quiet(), _rng_restored(), torch.set_grad_enabled(grad), self.mode:
            yield

    @contextlib.contextmanager
    def module_on_fakes(self, root: nn.Module, training: bool) -> Iterator[None]:
        """``root``'s parameters, buffers and tensor attributes swapped for fakes, and every
        module's attributes restored afterwards (a forward that caches something on ``self``
        leaves nothing behind)."""
        saved = []
        fakes: dict[int, torch.Tensor] = {}

        def fake(tensor: torch.Tensor) -> torch.Tensor:
            found = fakes.get(id(tensor))
            if found is None:
                found = fakes[id(tensor)] = ts.fake_of(self.mode, tensor)
            return found

        try:
            for module in root.modules():
                saved.append((module, dict(module.__dict__), dict(module._parameters), dict(module._buffers)))
                for registry in (module._parameters, module._buffers):
                    for name, tensor in registry.items():
                        if tensor is not None:
                            registry[name] = fake(tensor)
                for name, value in list(module.__dict__.items()):
                    if isinstance(value, torch.Tensor):
                        module.__dict__[name] = fake(value)
            root.train(training)
            yield
        finally:
            for module, attributes, parameters, buffers in saved:
                module._parameters.clear()
                module._parameters.update(parameters)
                module._buffers.clear()
                module._buffers.update(buffers)
                module.__dict__.clear()
                module.__dict__.update(attributes)


_OP_CODE = Recorder.__torch_function__.__code__


def _inside_op(frame: Any, user: Any) -> bool:
    """Whether a guard fired inside a recorded op, else in Python code (``if H > W:``)."""
    while frame is not None and frame is not user:
        if frame.f_code is _OP_CODE:
            return True
        frame = frame.f_back
    return False


# torch's structured trace log (TORCH_TRACE, and pytest's log capture) ignores logging.disable
_TORCH_TRACE_LOG = logging.getLogger("torch.__trace")


def _drop_record(_record: logging.LogRecord) -> bool:
    return False


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    _TORCH_TRACE_LOG.addFilter(_drop_record)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):  # fmt: skip
            warnings.simplefilter("ignore")
            yield
    finally:
        _TORCH_TRACE_LOG.removeFilter(_drop_record)
        logging.disable(previous)


@contextlib.contextmanager
def _rng_restored() -> Iterator[None]:
    state = random.getstate()
    numpy = sys.modules.get("numpy")
    numpy_state = numpy.random.get_state() if numpy is not None else None
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(state)
        if numpy_state is not None:
            numpy.random.set_state(numpy_state)
