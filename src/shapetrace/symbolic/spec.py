"""Dim specs: ``"B C H W"`` names the dims of one tensor, and what ``trace(dims=..., **sizes)`` and
``--dims`` accept."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SPLIT = re.compile(r"[\s,]+")


class DimsError(ValueError):
    """A dims spec or size that cannot be used (raised before anything runs)."""


@dataclass(frozen=True)
class DimSpec:
    """Names for the dims of one tensor: ``names`` from the left and, after a ``...``, ``tail``
    from the right. ``None`` leaves a dim unnamed (``_``, a number, or a jaxtyping expression)."""

    names: tuple[str | None, ...]
    tail: tuple[str | None, ...] | None = None  # set when the spec has a `...`
    text: str = ""

    def for_rank(self, rank: int) -> list[str | None] | None:
        """One name (or ``None``) per dim of a ``rank``-dim tensor; ``None`` if the ranks disagree."""
        if self.tail is None:
            return list(self.names) if len(self.names) == rank else None
        middle = rank - len(self.names) - len(self.tail)
        return None if middle < 0 else [*self.names, *([None] * middle), *self.tail]

    @property
    def named(self) -> list[str]:
        return [n for n in (*self.names, *(self.tail or ())) if n is not None]


def spec_tokens(text: str) -> list[str]:
    """The tokens of a spec: ``"(B, C, H*W)"`` -> ``["B", "C", "H*W"]``."""
    if not isinstance(text, str):
        raise DimsError(f"a dims spec is a string like 'B C H W', not {type(text).__name__}")
    body = text.strip()
    if body.startswith("(") and body.endswith(")"):
        body = body[1:-1]
    tokens = [token for token in _SPLIT.split(body) if token]
    if not tokens:
        raise DimsError(f"dims spec {text!r} names no dim")
    return tokens


def parse_spec(text: str) -> DimSpec:
    """``"B C H W"``, ``"(B, C, H, W)"``, ``"B ... D"``; ``_`` or a number leaves a dim unnamed."""
    tokens = spec_tokens(text)
    head: list[str | None] = []
    tail: list[str | None] | None = None
    for token in tokens:
        if token in ("...", "*"):
            if tail is not None:
                raise DimsError(f"dims spec {text!r} has more than one '...'")
            tail = []
            continue
        if token == "_" or token.isdigit():
            name = None
        elif _NAME.match(token):
            name = token
        else:
            raise DimsError(
                f"dims spec {text!r}: {token!r} is not a dim name; a spec names each dim of an input "
                "(like 'B C H W'), and the model's other sizes follow from them"
            )
        (head if tail is None else tail).append(name)
    spec = DimSpec(tuple(head), None if tail is None else tuple(tail), text)
    repeated = {n for n in spec.named if spec.named.count(n) > 1}
    if repeated:
        raise DimsError(f"dims spec {text!r} names {', '.join(sorted(repeated))} twice")
    return spec


def check_size(name: str, value: Any) -> int:
    """A named size: a non-negative int."""
    if not _NAME.match(name):
        raise DimsError(f"{name!r} is not a valid dim name")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DimsError(f"size {name}={value!r} must be a non-negative int")
    return int(value)


@dataclass(frozen=True)
class DimsOption:
    """What the user named: one spec for a root module's first tensor argument, or specs per
    argument name, and named sizes (constants like ``D=512``)."""

    spec: DimSpec | None = None
    by_argument: dict[str, DimSpec] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.spec is not None or bool(self.by_argument) or bool(self.sizes)


NO_DIMS = DimsOption()  # what a trace without names has (shared: a DimsOption is never changed)


def dims_option(dims: str | Mapping[str, str] | DimsOption | None, sizes: Mapping[str, Any]) -> DimsOption:
    """Validate ``trace(dims=..., **sizes)``: raises :class:`DimsError` with the reason."""
    if dims is None and not sizes:  # every trace checks: the common case without building one
        return NO_DIMS
    if isinstance(dims, DimsOption):
        extra = {name: check_size(name, value) for name, value in sizes.items()}
        return DimsOption(dims.spec, dict(dims.by_argument), {**dims.sizes, **extra})
    spec = None
    by_argument: dict[str, DimSpec] = {}
    if isinstance(dims, str):
        spec = parse_spec(dims)
    elif isinstance(dims, Mapping):
        for argument, text in dims.items():
            if not isinstance(argument, str) or not _NAME.match(argument):
                raise DimsError(f"dims keys are forward argument names, not {argument!r}")
            by_argument[argument] = parse_spec(text)
    elif dims is not None:
        raise DimsError(
            f"dims is a spec like 'B C H W' or a dict like {{'x': 'B C H W'}}, not {type(dims).__name__}"
        )
    checked = {name: check_size(name, value) for name, value in sizes.items()}
    return DimsOption(spec, by_argument, checked)


def parse_cli_dims(values: list[str]) -> DimsOption:
    """``--dims`` values: ``"B C H W"`` (a root module's first tensor argument), ``x="B N"`` (the
    argument ``x``) or ``D=512`` (a named size); several may be given."""
    spec = None
    by_argument: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for value in values:
        for part in value.split(";"):
            part = part.strip()
            if not part:
                continue
            key, eq, rest = part.partition("=")
            key, rest = key.strip(), rest.strip().strip("'\"")
            if eq and _NAME.match(key) and rest.isdigit():
                sizes[key] = int(rest)
            elif eq and _NAME.match(key):
                by_argument[key] = rest
            elif eq:
                raise DimsError(f"--dims {part!r}: expected NAME=SIZE, ARG='B N' or 'B C H W'")
            else:
                if spec is not None:
                    raise DimsError("--dims: give one unnamed spec; name the others by argument (x='B N')")
                spec = part
    option = dims_option(by_argument or None, sizes)
    return DimsOption(parse_spec(spec) if spec else None, option.by_argument, option.sizes)


@dataclass(frozen=True)
class TensorSpec:
    """An input of :func:`~shapetrace.trace_shapes` given by its dims: ``TensorSpec("B T",
    dtype=torch.long)``. A plain string ``"B C H W"`` is a float tensor on the model's device."""

    dims: str
    dtype: Any = None  # torch.dtype; the default dtype when None
    device: Any = None  # torch.device or str; the model's device when None
    requires_grad: bool = False
