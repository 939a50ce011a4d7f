"""Where dim names come from besides the user's ``dims=``: jaxtyping annotations on ``forward``,
and the source line that made an input, ``torch.rand(B, C, H, W, device=DEVICE)``.

The source is read with ``ast`` at the exact call the recorder saw (its code object and
instruction offset give the call's span), never with text patterns.
"""

from __future__ import annotations

import ast
import linecache
from functools import lru_cache
from types import CodeType

from torch import nn

from shapetrace.contracts import dim_names, forward_dims
from shapetrace.contracts.spec_dims import is_variadic
from shapetrace.symbolic.spec import DimSpec

# Factories whose arguments are sizes: name -> where the sizes are.
#   "sizes": f(*size) or f(size) or f(size=...);  "first": f(size, ...);  "last": randint(low, high, size)
#   "end": arange(end) / arange(0, end);  "count": linspace(start, end, steps), randperm(n), eye(n[, m])
_FACTORIES = {
    "rand": "sizes", "randn": "sizes", "zeros": "sizes", "ones": "sizes", "empty": "sizes",
    "new_zeros": "sizes", "new_ones": "sizes", "new_empty": "sizes", "full": "first", "new_full": "first",
    "empty_strided": "first", "randint": "last", "arange": "end", "linspace": "count", "logspace": "count",
    "randperm": "count", "eye": "count",
}  # fmt: skip
_COUNT_ARGUMENT = {"linspace": (2, "steps"), "logspace": (2, "steps"), "randperm": (0, "n"), "eye": (0, "n")}


def is_factory(name: str) -> bool:
    return name in _FACTORIES


def factory_dim_names(code: CodeType | None, lasti: int, name: str, rank: int) -> list[str | None] | None:
    """The variable names the source passed as sizes to the factory ``name`` (``rand``,
    ``zeros``, ``arange`` ...) at ``code``/``lasti``: one per output dim, ``None`` where the size
    is not a plain variable (``2 * B``, ``3``). ``None`` if the call cannot be read, or if it
    runs in an ``__init__`` (parameters and buffers are not inputs)."""
    if code is None or name not in _FACTORIES or code.co_name == "__init__":
        return None
    call = _call_at(code, lasti)
    if call is None or _called_name(call) != name:
        return None
    nodes = _size_nodes(call, name)
    if nodes is None or len(nodes) != rank or any(isinstance(n, ast.Starred) for n in nodes):
        return None
    return [n.id if isinstance(n, ast.Name) else None for n in nodes]


def _call_at(code: CodeType, lasti: int) -> ast.Call | None:
    positions = list(code.co_positions())
    index = lasti // 2
    if not 0 <= index < len(positions) or None in positions[index]:
        return None
    return _calls_in("".join(linecache.getlines(code.co_filename))).get(tuple(positions[index]))


@lru_cache(maxsize=64)
def _calls_in(source: str) -> dict[tuple[int, int, int, int], ast.Call]:
    """Every call in a source text, by its span (line, end line, byte columns)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    return {
        (node.lineno, node.end_lineno, node.col_offset, node.end_col_offset): node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _size_nodes(call: ast.Call, name: str) -> list[ast.expr] | None:
    kind = _FACTORIES[name]
    args = list(call.args)
    keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
    if kind == "sizes":
        if "size" in keywords:
            return _elements(keywords["size"])
        if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
            return _elements(args[0])
        return args
    if kind == "first":
        return _elements(args[0] if args else keywords.get("size"))
    if kind == "last":
        return _elements(keywords["size"] if "size" in keywords else args[-1] if len(args) >= 2 else None)
    if kind == "end":
        if len(args) == 1:
            return [args[0]]
        if len(args) == 2 and isinstance(args[0], ast.Constant) and args[0].value == 0:
            return [args[1]]
        return [keywords["end"]] if "end" in keywords and len(args) == 0 else None
    position, keyword = _COUNT_ARGUMENT[name]
    nodes = [args[position] if len(args) > position else keywords.get(keyword)]
    if name == "eye":
        nodes.append(args[1] if len(args) > 1 else keywords.get("m", nodes[0]))
    return None if None in nodes else nodes


def _elements(node: ast.expr | None) -> list[ast.expr] | None:
    if isinstance(node, (ast.Tuple, ast.List)):
        return list(node.elts)
    return None


# --- jaxtyping annotations ---------------------------------------------------------------------


def forward_dim_specs(module: nn.Module) -> dict[str, DimSpec]:
    """``argument -> DimSpec`` of each array-annotated argument of ``forward``, as
    :func:`shapetrace.contracts.forward_dims` reads the hints and
    :func:`~shapetrace.contracts.dim_names` names the dims: fixed sizes, expressions (``H*W``) and
    ``_`` leave dims unnamed; a ``*batch`` or ``...`` stands for any number of unnamed dims.
    Tensors inside an argument (``pair[0]``) are not named."""
    specs = forward_dims(module)
    return {argument: _spec_of(text) for argument, text in specs.items() if argument.isidentifier()}


def _spec_of(text: str) -> DimSpec:
    head: list[str | None] = []
    tail: list[str | None] | None = None
    for token in text.split():
        if is_variadic(token):
            tail = []
            continue
        (name,) = dim_names(token, 1)
        # a broadcastable `#B` may be 1 here: named only when its size is not 1 (see engine)
        if name is not None and "#" in token[: len(token) - len(token.lstrip("#_?"))]:
            name = "#" + name
        (head if tail is None else tail).append(name)
    return DimSpec(tuple(head), None if tail is None else tuple(tail), text)
