"""Checks compiled from annotations, one per hint, run on each call.

A check returns ``None`` when the value matches, else a :class:`CheckFailure`. Array hints are
jaxtyping's: dims bind in jaxtyping's memo of the call, so ``isinstance`` checks in the body
see the same bindings. Specs made of plain, fixed, ``#``-broadcastable, ``H*W``-style and
``*batch``/``...`` dims on tensors are matched here directly (jaxtyping's own check costs
~7 µs a tensor); everything else, and every mismatch, goes to jaxtyping, whose verdict and
reason are the ones reported. Non-array hints go to ``isinstance`` (plain classes) or
``typeguard.check_type``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Union

import torch

from shapetrace._private import jaxtyping_api as jt
from shapetrace.contracts.hints import MAX_DEPTH, field_hints, has_array_hint, hint_text, is_special_class

_Tensor = torch.Tensor


class CallState:
    """The binding scope of one checked call: jaxtyping's memo dicts (read again after every
    failed check, since jaxtyping replaces them then) and which value bound each dim first."""

    __slots__ = ("single", "variadic", "origin", "arguments")

    def __init__(self, arguments: dict[str, Any], memos: tuple[dict, dict]) -> None:
        self.arguments = arguments
        self.origin: dict[str, str] = {}  # dim name ("*batch" for variadic) -> value path
        self.single, self.variadic = memos

    def refresh(self) -> None:
        self.single, self.variadic = jt.current_memo()

    def note_new_bindings(self, path: str) -> None:
        origin = self.origin
        for name in self.single:
            if name not in origin:
                origin[name] = path
        for name in self.variadic:
            if "*" + name not in origin:
                origin["*" + name] = path


@dataclasses.dataclass
class CheckFailure:
    """A value that did not match ``check``'s hint at ``path``; ``reason`` is the checker's own
    words (turned into a sentence with names and origins by :mod:`.explain`)."""

    path: str
    check: Check
    value: Any
    reason: str


class Check:
    """What checks one hint: ``check`` returns ``None`` or a :class:`CheckFailure`."""

    hint: Any

    def check(self, value: Any, path: str, state: CallState) -> CheckFailure | None:
        raise NotImplementedError

    @property
    def expected(self) -> str:
        return hint_text(self.hint)

    def array_specs(self, path: str) -> dict[str, str]:
        """``path -> dims spec`` of the array hints inside (for ``forward_dims``)."""
        return {}


# --- arrays ------------------------------------------------------------------------------------


_ALL_TORCH_DTYPES = tuple(
    (value, repr(value).rsplit(".", 1)[-1])
    for value in vars(torch).values()
    if isinstance(value, torch.dtype)
)


@functools.cache
def _torch_dtypes(dtypes: Any) -> frozenset:
    """The torch dtypes whose jaxtyping name (``float32``, ...) ``dtypes`` accepts."""
    return frozenset(
        value
        for value, name in _ALL_TORCH_DTYPES
        if dtypes is jt.ANY_DTYPE or any(d == name if isinstance(d, str) else d.match(name) for d in dtypes)
    )


def _dim_code(dim: Any, size: str, constants: dict[str, Any]) -> list[str] | None:
    """Lines that check one dim at ``size`` (an expression) as jaxtyping's ``_check_dims`` does;
    ``None`` for a dim left to jaxtyping (``?``-tree paths, ``{...}`` formatted expressions)."""
    if dim is jt.ANONYMOUS_DIM:
        return []
    if type(dim) is jt.FixedDim:
        lines = [f"if {size} != {dim.size}: return _undo(new, single, variadic)"]
    elif type(dim) is jt.NamedDim and not dim.treepath:
        lines = [
            f"known = single.get({dim.name!r})",
            "if known is None:",
            f"    single[{dim.name!r}] = {size}",
            f"    new.append({dim.name!r})",
            f"elif known != {size}: return _undo(new, single, variadic)",
        ]
    elif type(dim) is jt.SymbolicDim and "{" not in dim.elem:
        name = f"_expr{len(constants)}"
        try:
            constants[name] = compile(dim.elem, f"<dim {dim.elem}>", "eval")
        except SyntaxError:
            return None
        lines = [  # an unbound name: jaxtyping raises its AnnotationError, reported from there
            "try:",
            f"    wanted = eval({name}, dict(single))",
            "except Exception:",
            "    return _undo(new, single, variadic)",
            f"if wanted != {size}: return _undo(new, single, variadic)",
        ]
    else:
        return None
    if dim.broadcastable:  # a #-dim of size 1 matches anything and binds nothing
        return [f"if {size} != 1:"] + ["    " + line for line in lines]
    return lines


def _undo(new: list[str], single: dict, variadic: dict) -> None:
    for name in new:
        if name[0] == "*":
            del variadic[name[1:]]
        else:
            del single[name]
    return None


def _compile_matcher(dims: tuple, variadic_at: int | None) -> Callable | None:
    """A function ``(shape, single, variadic) -> names bound | None`` checking ``dims`` the way
    jaxtyping does, generated with one branch per dim (a loop over dims costs twice as much);
    ``None`` when some dim is left to jaxtyping."""
    constants: dict[str, Any] = {"_undo": _undo}
    if variadic_at is None:
        body = [f"if len(shape) != {len(dims)}: return None", "new = []"]
        if dims:
            body.append("".join(f"s{i}, " for i in range(len(dims))) + "= shape")
        positions = [(dim, f"s{i}") for i, dim in enumerate(dims)]
    else:
        before, after = dims[:variadic_at], dims[variadic_at + 1 :]
        body = ["n = len(shape)", f"if n < {len(dims) - 1}: return None", "new = []"]
        body += [f"s{i} = shape[{i}]" for i in range(len(before))]
        body += [f"t{i} = shape[n - {len(after) - i}]" for i in range(len(after))]
        positions = [(dim, f"s{i}") for i, dim in enumerate(before)]
        positions += [(dim, f"t{i}") for i, dim in enumerate(after)]
    for dim, size in positions:
        lines = _dim_code(dim, size, constants)
        if lines is None:
            return None
        body += lines
    if variadic_at is not None and dims[variadic_at] is not jt.ANONYMOUS_VARIADIC_DIM:
        variadic = dims[variadic_at]
        if variadic.broadcastable or variadic.treepath:
            return None
        end = f"n - {len(dims) - variadic_at - 1}"
        body += [
            f"sizes = shape[{variadic_at}:{end}]",
            f"known = variadic.get({variadic.name!r})",
            "if known is None:",
            f"    variadic[{variadic.name!r}] = (False, sizes)",
            f"    new.append({'*' + variadic.name!r})",
            "elif known[0] or known[1] != sizes: return _undo(new, single, variadic)",
        ]
    source = "def match(shape, single, variadic):\n" + "".join(
        f"    {line}\n" for line in body + ["return new"]
    )
    exec(source, constants)
    return constants["match"]


class ArrayCheck(Check):
    """A jaxtyping array hint such as ``Float[Tensor, "B C H*W"]``."""

    def __init__(self, hint: type) -> None:
        self.hint = hint
        array_type, self.spec, dtype_class, dtypes, dims, variadic_at = jt.array_hint_parts(hint)
        self.dtype_name = dtype_class.__name__
        self.array_type = array_type
        self.dtypes = _torch_dtypes(dtypes)
        self.match = _compile_matcher(dims, variadic_at) if array_type is _Tensor else None

    @property
    def expected(self) -> str:
        array = getattr(self.array_type, "__name__", repr(self.array_type))
        return f'{self.dtype_name}[{array}, "{self.spec}"]'

    def array_specs(self, path: str) -> dict[str, str]:
        return {path: self.spec}

    def check(self, value: Any, path: str, state: CallState) -> CheckFailure | None:
        match = self.match
        if match is not None and isinstance(value, _Tensor) and value.dtype in self.dtypes:
            new = match(value.shape, state.single, state.variadic)
            if new is not None:
                if new:
                    origin = state.origin
                    for name in new:
                        origin.setdefault(name, path)
                return None
        return self._check_with_jaxtyping(value, path, state)

    def _check_with_jaxtyping(self, value: Any, path: str, state: CallState) -> CheckFailure | None:
        """jaxtyping decides: for specs not matched here, and for every mismatch."""
        before = len(state.single) + len(state.variadic)
        try:
            reason = jt.instancecheck_reason(self.hint, value)
        except jt.AnnotationError as error:
            state.refresh()
            return CheckFailure(path, self, value, f"the annotation cannot be evaluated: {error}")
        if reason:
            state.refresh()
            return CheckFailure(path, self, value, reason)
        if len(state.single) + len(state.variadic) != before:
            state.note_new_bindings(path)
        return None


# --- containers ----------------------------------------------------------------------------------


class TupleCheck(Check):
    """``tuple[A, B]`` (``items``) or ``tuple[A, ...]`` (``each``)."""

    def __init__(self, hint: Any, items: list[Check | None] | None, each: Check | None = None) -> None:
        self.hint, self.items, self.each = hint, items, each

    def check(self, value: Any, path: str, state: CallState) -> CheckFailure | None:
        if not isinstance(value, tuple):
            return CheckFailure(path, self, value, f"expected a tuple, got {type(value).__name__}")
        if self.items is None:
            return _check_items(self.each, value, path, state)
        if len(value) != len(self.items):
            return CheckFailure(path, self, value, f"expected {len(self.items)} items, got {len(value)}")
        for i, (check, item) in enumerate(zip(self.items, value)):
            if check is not None:
                failure = check.check(item, f"{path}[{i}]", state)
                if failure is not None:
                    return failure
        return None

    def array_specs(self, path: str) -> dict[str, str]:
        if self.items is None:
            return self.each.array_specs(f"{path}[i]") if self.each else {}
        specs: dict[str, str] = {}
        for i, check in enumerate(self.items):
            if check is not None:
                specs.update(check.array_specs(f"{path}[{i}]"))
        return specs


class SequenceCheck(Check):
    """``list[A]``, ``Sequence[A]``: every item."""

    def __init__(self, hint: Any, each: Check) -> None:
        self.hint, self.each = hint, each

    def check(self, value: Any, path: str, state: CallState) -> CheckFailure | None:
        if not isinstance(value, collections.abc.Sequence) or isinstance(value, (str, bytes)):
            return CheckFailure(path, self, value, f"expected a sequence, got {type(value).__name__}")
        return _check_items(self.each, value, path, state)

    def array_specs(self, path: str) -> dict[str, str]:
        return self.each.array_specs(f"{path}[i]")


def _check_items(check: Check | None, items: Any, path: str, state: CallState) -> CheckFailure | None:
    if check is None:
        return None
    for i, item in enumerate(items):
        failure = check.check(item, f"{path}[{i}]", state)
        if failure is not None:
            return failure
    return None


class MappingCheck(Check):
    """``dict[str, A]``, ``Mapping[str, A]``: every value (keys with ``key``, when given)."""

    def __init__(self, hint: Any, key: Check | None, each: Check) -> None:
        self.hint, self.key, self.each = hint, key, each

    def check(self, value: Any, path: str, state: CallState) -> CheckFailure | None:
        if not isinstance(value, collections.abc.Mapping):
            return CheckFailure(path, self, value, f"expected a mapping, got {type(value).__name__}")
        for key, item in value.items():
            if self.key is not None:
                failure = self.key.check(key, f"{path}.keys()", state)
                if failure is not None:
                    return failure
            failure = self.each.check(item, f"{path}[{key!r}]", state)
            if failure is not None:
                return failure
        return None

    def array_specs(self, path: str) -> dict[str, str]:
        return self.each.array_specs(f"{path}[key]")


class FieldsCheck(Check):
    """A ``TypedDict`` (``[key]``), ``NamedTuple`` or dataclass (``.field``) with array fields."""

    def __init__(self, hint: Any, fields: dict[str, Check], required: frozenset[str], by_key: bool) -> None:
        self.hint, self.fields, self.required, self.by_key = hint, fields, required, by_key

    def check(self, value: Any, path: str, state: CallState) -> CheckFailure | None:
        if self.by_key:
            if not isinstance(value, collections.abc.Mapping):
                return CheckFailure(path, self, value, f"expected a mapping, got {type(value).__name__}")
            missing = sorted(self.required - value.keys())
            if missing:
                return CheckFailure(path, self, value, f"missing keys: {', '.join(map(repr, missing))}")
        elif not isinstance(value, self.hint):
            return CheckFailure(path, self, value, f"expected {self.expected}, got {type(value).__name__}")
        for name, check in self.fields.items():
            if self.by_key:
                if name not in value:
                    continue
                item, item_path = value[name], f"{path}[{name!r}]"
            else:
                item, item_path = getattr(value, name), f"{path}.{name}"
            failure = check.check(item, item_path, state)
            if failure is not None:
                return failure
        return None

    def array_specs(self, path: str) -> dict[str, str]:
        specs: dict[str, str] = {}
        for name, check in self.fields.items():
            specs.update(check.array_specs(f"{path}[{name!r}]" if self.by_key else f"{path}.{name}"))
        return specs


class UnionCheck(Check):
    """``A | B | None``: the first alternative that matches binds its dims."""

    def __init__(self, hint: Any, alternatives: list[Check], allows_none: bool) -> None:
        self.hint, self.alternatives, self.allows_none = hint, alternatives, allows_none

    def check(self, value: Any, path: str, state: CallState) -> CheckFailure | None:
        if value is None and self.allows_none:
            return None
        if len(self.alternatives) == 1:
            return self.alternatives[0].check(value, path, state)
        failures = []
        for alternative in self.alternatives:
            single, variadic, origin = dict(state.single), dict(state.variadic), dict(state.origin)
            failure = alternative.check(value, path, state)
            if failure is None:
                return None
            jt.restore_memo(single, variadic)
            state.refresh()
            state.origin = origin
            failures.append(failure)
        reasons = "; ".join(f"{f.check.expected}: {f.reason}" for f in failures)
        return CheckFailure(path, self, value, f"matches none of the alternatives ({reasons})")

    def array_specs(self, path: str) -> dict[str, str]:
        arrays = [a for a in self.alternatives if a.array_specs(path)]
        return arrays[0].array_specs(path) if len(arrays) == 1 else {}


# --- everything else ------------------------------------------------------------------------------

_NUMERIC_TOWER = {float: (int, float), complex: (int, float, complex)}


class InstanceCheck(Check):
    """A plain class (``int``, ``torch.Tensor``, ``nn.Module``): ``isinstance``, with PEP 484's
    numeric tower (an ``int`` is a ``float``)."""

    def __init__(self, hint: type) -> None:
        self.hint = hint
        self.accepted = _NUMERIC_TOWER.get(hint, hint)

    def check(self, value: Any, path: str, state: CallState) -> CheckFailure | None:
        if isinstance(value, self.accepted):
            return None
        return CheckFailure(path, self, value, f"expected {self.expected}, got {type(value).__name__}")


class TypeguardCheck(Check):
    """Any other hint without arrays to walk into (``Literal``, ``Callable``, generics):
    ``typeguard.check_type``."""

    def __init__(self, hint: Any) -> None:
        import typeguard  # ~10 ms: imported by the first hint that needs it, not with every trace

        self.hint = hint
        self._check_type = typeguard.check_type
        self._error = typeguard.TypeCheckError

    def check(self, value: Any, path: str, state: CallState) -> CheckFailure | None:
        try:
            self._check_type(value, self.hint)
        except self._error as error:
            return CheckFailure(path, self, value, str(error))
        return None


def build_check(hint: Any, depth: int = 0):
    """The check for ``hint``, or ``None`` when there is nothing to check (``Any``, ``object``)."""
    if hint is Any or hint is object or hint is inspect.Parameter.empty or depth > MAX_DEPTH:
        return None
    if jt.is_array_hint(hint):
        return ArrayCheck(hint)
    if hint is None:
        hint = type(None)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return build_check(args[0], depth + 1)
    if origin in (Union, types.UnionType):
        alternatives = [build_check(arg, depth + 1) for arg in args if arg is not type(None)]
        if any(a is None for a in alternatives):  # Any among them
            return None
        return UnionCheck(hint, alternatives, allows_none=type(None) in args)
    if not has_array_hint(hint, depth):
        if isinstance(hint, type) and origin is None and not is_special_class(hint):
            return InstanceCheck(hint)
        return TypeguardCheck(hint)
    if origin is tuple:
        if len(args) == 2 and args[1] is ...:
            return TupleCheck(hint, None, build_check(args[0], depth + 1))
        return TupleCheck(hint, [build_check(arg, depth + 1) for arg in args])
    if origin in (list, collections.abc.Sequence, collections.abc.MutableSequence):
        return SequenceCheck(hint, build_check(args[0], depth + 1))
    if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
        return MappingCheck(hint, build_check(args[0], depth + 1), build_check(args[1], depth + 1))
    fields = field_hints(hint)
    if fields is not None:
        field_checks = {name: build_check(h, depth + 1) for name, h in fields[0].items()}
        field_checks = {name: c for name, c in field_checks.items() if c is not None}
        return FieldsCheck(hint, field_checks, fields[1], fields[2])
    return TypeguardCheck(hint)  # arrays inside something not walked (Callable, ...)
