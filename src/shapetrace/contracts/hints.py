"""From a function's annotations to checks: resolving string annotations, telling which hints
hold jaxtyping arrays, and writing hints the way users write them."""

from __future__ import annotations

import ast
import dataclasses
import types
import typing
from typing import Any, Union

from shapetrace._private import jaxtyping_api as jt

MAX_DEPTH = 8


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
    if depth > MAX_DEPTH:
        return False
    if jt.is_array_hint(hint):
        return True
    if any(has_array_hint(arg, depth + 1) for arg in typing.get_args(hint) if arg is not ...):
        return True
    fields = field_hints(hint)
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


def field_hints(hint: Any) -> tuple[dict[str, Any], frozenset[str], bool] | None:
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


def is_special_class(hint: type) -> bool:
    """Classes ``isinstance`` does not check the way typing means them (protocols, TypedDicts)."""
    return typing.is_typeddict(hint) or getattr(hint, "_is_protocol", False)
