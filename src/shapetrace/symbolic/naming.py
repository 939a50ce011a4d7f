"""Where dim names come from besides the user's ``dims=``: jaxtyping annotations on ``forward``,
the ``forward``'s own statements (``B, C, H, W = x.shape``), and the source line that made an
input, ``torch.rand(B, C, H, W, device=DEVICE)``; and the script's int constants
(``P, D = 77, 512``), which name numbers only as guesses.

The source is read with ``ast`` (at the exact call the recorder saw, for a factory: its code
object and instruction offset give the call's span), never with text patterns.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import sys
import tokenize
from collections.abc import Iterable
from functools import cache, lru_cache
from types import CodeType
from typing import Any

import sympy
from torch import nn

from shapetrace.capture.source import positions
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


FactorySize = str | int | ast.expr  # a variable's name, an int literal, or another expression


def factory_dim_names(code: CodeType | None, lasti: int, name: str, rank: int) -> list[FactorySize] | None:
    """What the source passed as sizes to the factory ``name`` (``rand``, ``zeros``, ``arange``
    ...) at ``code``/``lasti``, one per output dim: a variable's name, an int literal (``3``), or
    the expression (``H // 8``). ``None`` if the call cannot be read, or if it runs in an
    ``__init__`` (parameters and buffers are not inputs)."""
    if code is None or name not in _FACTORIES or code.co_name == "__init__":
        return None
    call = call_at(code, lasti)
    if call is None or _called_name(call) != name:
        return None
    nodes = _size_nodes(call, name)
    if nodes is None or len(nodes) != rank or any(isinstance(n, ast.Starred) for n in nodes):
        return None
    return [n.id if isinstance(n, ast.Name) else _int_literal(n) if _int_literal(n) is not None else n for n in nodes]


_SIZE_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//"}


def size_expression(node: ast.expr, symbols: dict[str, sympy.Expr]) -> sympy.Expr | None:
    """A factory size written as an expression of named dims (``H // 8``, ``2 * C``, ``N + 1``)
    as a canonical expression, with ``symbols`` for the names; ``None`` when it uses anything
    else (another name, a call, a float)."""
    if isinstance(node, ast.Name):
        return symbols.get(node.id)
    number = _int_literal(node)
    if number is not None:
        return sympy.Integer(number)
    if isinstance(node, ast.BinOp) and type(node.op) in _SIZE_OPERATORS:
        left, right = size_expression(node.left, symbols), size_expression(node.right, symbols)
        if left is None or right is None:
            return None
        operator = _SIZE_OPERATORS[type(node.op)]
        if operator == "//":
            if not right.is_Integer or int(right) <= 0:
                return None
            from shapetrace._private.torch_symbolic import FloorDiv

            return FloorDiv(left, right)
        return left + right if operator == "+" else left - right if operator == "-" else left * right
    return None


def call_at(code: CodeType, lasti: int) -> ast.Call | None:
    """The call expression the instruction at ``lasti`` of ``code`` executes, if it is one."""
    return _node_at(code, lasti, ast.Call)


def subscript_at(code: CodeType, lasti: int) -> ast.Subscript | None:
    """The subscript (``x[:, [-1, 0]]``) the instruction at ``lasti`` of ``code`` executes, if it is one."""
    return _node_at(code, lasti, ast.Subscript)


def _node_at(code: CodeType, lasti: int, kind: type) -> Any:
    found = positions(code)
    index = lasti // 2
    if not 0 <= index < len(found) or None in found[index]:
        return None
    return _by_span(_source(code.co_filename), kind).get(tuple(found[index]))


def _source(filename: str) -> str:
    """The text of a file as :mod:`linecache` holds it: the same string object while linecache
    holds the same lines (the caches below key on it: a new join of a 100 kB file, hashed and
    compared for each module call a pass reads, was 8% of a diffusers DiT's pass)."""
    lines = linecache.getlines(filename)
    known = _sources.get(filename)
    if known is not None and known[0] is lines:
        return known[1]
    if len(_sources) >= 256:
        _sources.clear()  # bounded; one call, safe with passes in other threads
    text = "".join(lines)
    _sources[filename] = (lines, text)
    return text


_sources: dict[str, tuple[list[str], str]] = {}  # filename -> (linecache's lines, their text)


@lru_cache(maxsize=64)
def _nodes(source: str) -> dict[type, list[Any]]:
    """Every node of a source text by its type, in ``ast.walk``'s order: one walk answers what
    the pass asks of a file (its calls, its functions, its names; a walk of a 1000-line file
    costs ~12 ms, a first pass asked four)."""
    found: dict[type, list[Any]] = {}
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # not Python (a notebook cell's magics): nothing found
        return found
    for node in ast.walk(tree):
        found.setdefault(type(node), []).append(node)
    return found


def _nodes_of(source: str, *types: type) -> list[Any]:
    nodes = _nodes(source)
    return [node for kind in types for node in nodes.get(kind, ())]


@lru_cache(maxsize=128)  # two kinds per file
def _by_span(source: str, kind: type) -> dict[tuple[int, int, int, int], Any]:
    """Every node of a kind (calls, subscripts) in a source text, by its span (line, end line, byte columns)."""
    return {
        (node.lineno, node.end_lineno, node.col_offset, node.end_col_offset): node
        for node in _nodes_of(source, kind)
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
    A tensor inside an argument is keyed by its place: ``pair[0]``."""
    return {argument: _spec_of(text) for argument, text in forward_dims(module).items()}


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


# --- a forward's own statements: `B, C, H, W = x.shape` -----------------------------------------


def forward_statement_specs(module: nn.Module) -> dict[str, DimSpec]:
    """``argument -> DimSpec`` from the statements at the top of ``forward`` that read a tensor
    argument's sizes before anything rebinds it: ``B, C, H, W = x.shape``, ``b, t = idx.size()``,
    ``B, *_, D = x.shape``, ``N = x.shape[1]``, ``D = x.size(-1)``. Statements inside ``if``/``for``
    and after the argument is reassigned name nothing (they may read another tensor)."""
    forward = getattr(type(module), "forward", None)
    code = getattr(forward, "__code__", None)
    if code is None:
        return {}
    return dict(_statement_specs(code.co_filename, code.co_firstlineno, _source(code.co_filename)))


@lru_cache(maxsize=256)
def _statement_specs(filename: str, first_line: int, source: str) -> tuple[tuple[str, DimSpec], ...]:
    function = _function_at(source, first_line)
    if function is None:
        return ()
    arguments = [a.arg for a in (*function.args.posonlyargs, *function.args.args)][1:]
    arguments += [a.arg for a in function.args.kwonlyargs]
    unpacked: dict[str, DimSpec] = {}
    indexed: dict[str, dict[int, str]] = {}
    rebound: set[str] = set()
    for statement in function.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
            whole = _sizes_of(value)
            if isinstance(target, (ast.Tuple, ast.List)) and whole in arguments and whole not in rebound:
                spec = _unpacked_spec(target.elts, ast.unparse(statement))
                if spec is not None:
                    unpacked.setdefault(whole, spec)
            one = _size_item(value)
            if isinstance(target, ast.Name) and target.id != "_" and one is not None and one[0] in arguments \
                    and one[0] not in rebound:  # fmt: skip
                indexed.setdefault(one[0], {}).setdefault(one[1], target.id)
        rebound.update(_bound_names(statement))
    specs = dict(unpacked)
    for argument, names in indexed.items():
        if argument not in specs:
            specs[argument] = _indexed_spec(argument, names)
    return tuple(specs.items())


@lru_cache(maxsize=8)
def _lines(source: str) -> list[str]:
    """A source text's lines as :mod:`linecache` splits them (at ``\\n`` only)."""
    return [line + "\n" for line in source.split("\n")]


def _function_at(source: str, first_line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The function of a source text whose code object starts at ``first_line`` (its first
    decorator), parsed alone: its block (:func:`inspect.getblock`), a method's under an ``if``
    (its indentation kept, a string's lines too); once per function (:func:`_statement_specs`). Parsing and walking whole files instead was a
    quarter of a diffusers UNet's first pass (attention_processor.py alone is 6000 lines)."""
    try:
        block = "".join(inspect.getblock(_lines(source)[first_line - 1 :]))
        indented = block[:1].isspace()
        tree = ast.parse(f"if 1:\n{block}" if indented else block)
    except (SyntaxError, ValueError, tokenize.TokenError):  # not a block of its own
        return None
    body = tree.body[0].body if indented else tree.body
    function = body[0] if body else None
    return function if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def _sizes_of(value: ast.expr) -> str | None:
    """``x`` for ``x.shape`` and ``x.size()``."""
    if isinstance(value, ast.Attribute) and value.attr == "shape" and isinstance(value.value, ast.Name):
        return value.value.id
    if (
        isinstance(value, ast.Call) and not value.args and not value.keywords
        and isinstance(value.func, ast.Attribute) and value.func.attr == "size"
        and isinstance(value.func.value, ast.Name)
    ):  # fmt: skip
        return value.func.value.id
    return None


def _size_item(value: ast.expr) -> tuple[str, int] | None:
    """``(x, i)`` for ``x.shape[i]``, ``x.size()[i]`` and ``x.size(i)``."""
    if isinstance(value, ast.Subscript):
        whole, index = _sizes_of(value.value), _int_literal(value.slice)
        return (whole, index) if whole is not None and index is not None else None
    if (
        isinstance(value, ast.Call) and len(value.args) == 1 and not value.keywords
        and isinstance(value.func, ast.Attribute) and value.func.attr == "size"
        and isinstance(value.func.value, ast.Name)
    ):  # fmt: skip
        index = _int_literal(value.args[0])
        return (value.func.value.id, index) if index is not None else None
    return None


def _int_literal(node: ast.expr) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_literal(node.operand)
        return -inner if inner is not None else None
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


NOT_LITERAL = object()  # what literal_index gives for an index that is not written in literals


def literal_index(node: ast.expr) -> Any:
    """The index a subscript's slice writes in literals (``:, [-1, 0]``, ``..., :16``, ``0``,
    ``None``), or :data:`NOT_LITERAL`: names, calls and arithmetic are not read."""
    if isinstance(node, ast.Tuple):
        items = tuple(literal_index(item) for item in node.elts)
        return NOT_LITERAL if NOT_LITERAL in items else items
    if isinstance(node, ast.Slice):
        parts = [None if part is None else _int_literal(part) for part in (node.lower, node.upper, node.step)]
        written = [part is not None for part in (node.lower, node.upper, node.step)]
        return NOT_LITERAL if any(w and p is None for w, p in zip(written, parts)) else slice(*parts)
    if isinstance(node, ast.List):
        numbers = [_int_literal(item) for item in node.elts]
        return NOT_LITERAL if None in numbers or not numbers else numbers
    if isinstance(node, ast.Constant) and (node.value is None or node.value is Ellipsis):
        return node.value
    number = _int_literal(node)
    return NOT_LITERAL if number is None else number

def _unpacked_spec(targets: list[ast.expr], text: str) -> DimSpec | None:
    head: list[str | None] = []
    tail: list[str | None] | None = None
    for target in targets:
        if isinstance(target, ast.Starred):
            if tail is not None:
                return None
            tail = []
        elif isinstance(target, ast.Name):
            (head if tail is None else tail).append(None if target.id == "_" else target.id)
        else:
            return None
    spec = DimSpec(tuple(head), None if tail is None else tuple(tail), text)
    return spec if spec.named else None


def _indexed_spec(argument: str, names: dict[int, str]) -> DimSpec:
    front = max((i for i in names if i >= 0), default=-1) + 1
    back = -min((i for i in names if i < 0), default=0)
    head = tuple(names.get(i) for i in range(front))
    tail = tuple(names.get(i) for i in range(-back, 0))
    text = "; ".join(f"{name} = {argument}.shape[{i}]" for i, name in sorted(names.items()))
    return DimSpec(head, tail, text)


def _bound_names(statement: ast.stmt) -> set[str]:
    """Names a statement (re)binds, anywhere inside it except in nested functions."""
    found = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            found.update(node.names)
    return found


# --- the user's files ------------------------------------------------------------------------

THIRD_PARTY = tuple(os.path.join(path, "") for path in {sys.prefix, sys.base_prefix, sys.exec_prefix} if path)
SHAPETRACE_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")


@cache
def is_users_file(file: str | None) -> bool:
    """Whether a source file is the user's own code: not the standard library or an installed
    package (their module state is theirs: caches, registries), not shapetrace. Cached: the
    effect guard asks it for each call the replayed code makes."""
    return bool(file) and not file.startswith(THIRD_PARTY) and not file.startswith(SHAPETRACE_ROOT) and \
        not file.startswith("<")  # fmt: skip


# --- the script's int constants --------------------------------------------------------------


def script_constants(filenames: Iterable[str]) -> dict[str, int]:
    """The names the user's files bind to one int literal and nothing else, with that value
    (``B, C, H, W = 8, 3, 128, 128``, ``D = 512``): a name a file binds to two values, or any
    other way too (a parameter, a loop variable, ``h = self.heads``), is not a constant of that
    file; one two files give different values is none. 0 and 1 are not named. Files of installed
    packages and of the standard library are not the user's (and parsing a library's modules
    costs seconds: diffusers' UNet blocks)."""
    values: dict[str, set[int]] = {}
    for filename in dict.fromkeys(name for name in filenames if is_users_file(name)):
        for name, found in _literal_bindings(_source(filename)).items():
            if len(found) == 1 and None not in found:  # a constant of this file
                values.setdefault(name, set()).update(found)
    return {name: found.pop() for name, found in values.items() if len(found) == 1 and next(iter(found)) not in (0, 1)}


@lru_cache(maxsize=64)
def _literal_bindings(source: str) -> dict[str, frozenset[int | None]]:
    """Every name a source text binds, with the int literals bound to it (``None``: bound to
    anything else)."""
    found: dict[str, set[int | None]] = {}
    literal: set[int] = set()  # ids of the Name targets bound to a literal

    def assign(target: ast.expr, value: ast.expr | None) -> None:
        if isinstance(target, ast.Name) and value is not None:
            number = _int_literal(value)
            if number is not None:
                found.setdefault(target.id, set()).add(number)
                literal.add(id(target))
        elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)) \
                and len(target.elts) == len(value.elts):  # fmt: skip
            for item, item_value in zip(target.elts, value.elts):
                assign(item, item_value)

    for node in _nodes_of(source, ast.Assign, ast.AnnAssign):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                assign(target, node.value)
        else:
            assign(node.target, node.value)
    bound = _nodes_of(source, ast.Name, ast.arg, ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                      ast.ClassDef)  # fmt: skip
    for node in bound:
        names: list[str] = []
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store) and id(node) not in literal:
                names = [node.id]
        elif isinstance(node, ast.arg):
            names = [node.arg]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in node.names]
        else:
            names = [node.name]
        for name in names:
            found.setdefault(name, set()).add(None)
    return {name: frozenset(values) for name, values in found.items()}
