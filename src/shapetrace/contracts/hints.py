"""From a function's annotations to checks: resolving string annotations, telling which hints
hold jaxtyping arrays, and writing hints the way users write them."""

from __future__ import annotations

import ast
import collections.abc
import dataclasses
import inspect
import types
import typing
from typing import Any, Union

from shapetrace._private import jaxtyping_api as jt

_MAX_DEPTH = 8


def resolve_hints(fn: Any, localns: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """``(hints, unresolved)``: each annotation of ``fn`` evaluated (``from __future__ import
    annotations`` included), and ``name -> reason`` for those that cannot be."""
    annotations = dict(getattr(fn, "__annotations__", None) or {})
    try:
        return typing.get_type_hints(fn, localns=localns, include_extras=True), {}
    except Exception:  # one bad annotation: resolve the others one by one
        pass
    globalns = getattr(fn, "__globals__", {})
    hints: dict[str, Any] = {}
    unresolved: dict[str, str] = {}
    for name, annotation in annotations.items():

        def probe() -> None: ...

        probe.__annotations__ = {name: annotation}
        try:
            hints[name] = typing.get_type_hints(probe, globalns, localns, include_extras=True)[name]
        except Exception as error:
            unresolved[name] = f"{type(error).__name__}: {error}"
    return hints, unresolved


def looks_like_array_hint(annotation: Any) -> bool:
    """Whether an annotation that could not be resolved reads like a jaxtyping hint:
    ``X[..., "dims"]`` somewhere in it."""
    if not isinstance(annotation, str):
        return False
    try:
        tree = ast.parse(annotation, mode="eval")
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple) and node.slice.elts:
            last = node.slice.elts[-1]
            if isinstance(last, ast.Constant) and isinstance(last.value, str):
                return True
    return False


def has_array_hint(hint: Any, depth: int = 0) -> bool:
    """Whether a jaxtyping array hint occurs anywhere in ``hint``."""
    if depth > _MAX_DEPTH:
        return False
    if jt.is_array_hint(hint):
        return True
    if any(has_array_hint(arg, depth + 1) for arg in typing.get_args(hint) if arg is not ...):
        return True
    fields = _field_hints(hint)
    return fields is not None and any(has_array_hint(h, depth + 1) for h in fields[0].values())


def hint_text(hint: Any) -> str:
    """A hint as users write it: ``Float[Tensor, "B N"]``, ``tuple[int, ...]``, ``Tensor | None``."""
    if jt.is_array_hint(hint):
        array_type, spec, dtype, *_ = jt.array_hint_parts(hint)
        return f'{dtype.__name__}[{getattr(array_type, "__name__", repr(array_type))}, "{spec}"]'
    if hint is type(None) or hint is None:
        return "None"
    if hint is ...:
        return "..."
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " | ".join(hint_text(arg) for arg in args)
    if origin is typing.Annotated:
        return hint_text(args[0])
    if origin is typing.Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    if origin is not None and args:
        name = getattr(origin, "__name__", None) or repr(origin).removeprefix("typing.")
        return f"{name}[{', '.join(hint_text(arg) for arg in args)}]"
    if isinstance(hint, type):
        return hint.__qualname__ if hint.__module__ != "builtins" else hint.__name__
    return repr(hint).removeprefix("typing.")


def _field_hints(hint: Any) -> tuple[dict[str, Any], frozenset[str], bool] | None:
    """``(field hints, required keys, by key)`` of a TypedDict, NamedTuple or dataclass type."""
    if not isinstance(hint, type):
        return None
    if typing.is_typeddict(hint):
        by_key, required = True, frozenset(getattr(hint, "__required_keys__", ()))
    elif (issubclass(hint, tuple) and hasattr(hint, "_fields")) or dataclasses.is_dataclass(hint):
        by_key, required = False, frozenset()
    else:
        return None
    try:
        fields = typing.get_type_hints(hint, include_extras=True)
    except Exception:
        return None
    return fields, required, by_key


def build_check(hint: Any, depth: int = 0):
    """The check for ``hint``, or ``None`` when there is nothing to check (``Any``, ``object``)."""
    from shapetrace.contracts import checks

    if hint is Any or hint is object or hint is inspect.Parameter.empty or depth > _MAX_DEPTH:
        return None
    if jt.is_array_hint(hint):
        return checks.ArrayCheck(hint)
    if hint is None:
        hint = type(None)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return build_check(args[0], depth + 1)
    if origin in (Union, types.UnionType):
        alternatives = [build_check(arg, depth + 1) for arg in args if arg is not type(None)]
        if any(a is None for a in alternatives):  # Any among them
            return None
        return checks.UnionCheck(hint, alternatives, allows_none=type(None) in args)
    if not has_array_hint(hint, depth):
        if isinstance(hint, type) and origin is None and not _is_special_class(hint):
            return checks.InstanceCheck(hint)
        return checks.TypeguardCheck(hint)
    if origin is tuple:
        if len(args) == 2 and args[1] is ...:
            return checks.TupleCheck(hint, None, build_check(args[0], depth + 1))
        return checks.TupleCheck(hint, [build_check(arg, depth + 1) for arg in args])
    if origin in (list, collections.abc.Sequence, collections.abc.MutableSequence):
        return checks.SequenceCheck(hint, build_check(args[0], depth + 1))
    if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
        return checks.MappingCheck(hint, build_check(args[0], depth + 1), build_check(args[1], depth + 1))
    fields = _field_hints(hint)
    if fields is not None:
        field_checks = {name: build_check(h, depth + 1) for name, h in fields[0].items()}
        field_checks = {name: c for name, c in field_checks.items() if c is not None}
        return checks.FieldsCheck(hint, field_checks, fields[1], fields[2])
    return checks.TypeguardCheck(hint)  # arrays inside something not walked (Callable, ...)


def _is_special_class(hint: type) -> bool:
    """Classes ``isinstance`` does not check the way typing means them (protocols, TypedDicts)."""
    return typing.is_typeddict(hint) or getattr(hint, "_is_protocol", False)
