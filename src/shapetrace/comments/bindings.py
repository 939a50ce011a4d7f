"""The values of the names a shape comment uses, read from the source and the trace.

For a comment on a line of function ``f`` a name is looked up, in order:

1. in ``f`` and the functions around it: an integer literal (``B, C, H, W = 8, 512, 4, 4``,
   ``N = H * W + 1``), or, in an ``nn.Module.forward``, a size of one of its tensor arguments
   (``B, C, H, W = x.shape``, ``B = x.size(0)``) read from that very module call; a name the
   function binds any other way (``h = self.heads``, a parameter, a loop variable) is unknown;
2. in the trace's named dims and constants (``Trace.dims``, from the symbolic pass);
3. at module level, then anywhere in the file, when every binding of it is the same literal.
"""

from __future__ import annotations

import ast
import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

import sympy

from shapetrace.capture.records import ModuleCall
from shapetrace.comments.grammar import NotAShape, parse_shape
from shapetrace.comments.runs import Run

_NESTED_SCOPES = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
)  # fmt: skip
_ARITHMETIC = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b if 0 <= b <= 64 else None,
}


@dataclass(frozen=True)
class Value:
    """A name's size: ``number`` at this run, and ``expr``, the same size in the trace's
    symbols when known (a ``forward`` argument's dim)."""

    number: int
    expr: sympy.Expr | None = None


@dataclass(frozen=True)
class _Binding:
    kind: str  # "assign" | "shape" | "other"
    line: int
    expr: ast.expr | None = None  # assign: the value assigned
    param: str | None = None  # shape: the argument whose size it is
    index: int = 0  # shape: which dim (negative: from the end)
    top_level: bool = False  # a statement of the function body itself, not inside if/for/with


@dataclass
class _Scope:
    first_line: int
    last_line: int
    parent: _Scope | None
    function: str | None = None  # None: module level
    class_name: str | None = None  # the class a method is defined in
    params: list[str] = field(default_factory=list)  # positional, after self
    bindings: dict[str, list[_Binding]] = field(default_factory=dict)
    _lines: dict[str, list[int]] = field(default_factory=dict, repr=False)  # name -> its binding lines, sorted

    def add(self, name: str, binding: _Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)

    def rebound_between(self, name: str, after: int, before: int) -> bool:
        """Whether the scope binds ``name`` on a line strictly between ``after`` and ``before``."""
        lines = self._lines.get(name)
        if lines is None:
            lines = self._lines[name] = sorted(b.line for b in self.bindings.get(name, ()))
        return bisect.bisect_left(lines, before) > bisect.bisect_right(lines, after)


class SourceNames:
    """Every name each scope of a file binds, and how."""

    def __init__(self, tree: ast.Module) -> None:
        self.module = _Scope(1, 10**9, None)
        self.functions: list[_Scope] = []
        self.returns: dict[int, _Scope] = {}  # line of the only `return` of a forward -> its scope
        _collect(self.module, tree.body)
        self._visit(tree, self.module, None)
        self._innermost = _innermost_by_line(self.functions)
        self.in_functions: dict[str, list[_Binding]] = {}  # name -> its bindings in every function
        for scope in self.functions:
            for name, bindings in scope.bindings.items():
                self.in_functions.setdefault(name, []).extend(bindings)

    def _visit(self, node: ast.AST, scope: _Scope, class_name: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = [*child.args.posonlyargs, *child.args.args]
                params = [a.arg for a in args]
                inner = _Scope(
                    child.lineno, child.end_lineno or child.lineno, scope, child.name, class_name,
                    params[1:] if class_name is not None else params,
                )  # fmt: skip
                for arg in (*args, *child.args.kwonlyargs, child.args.vararg, child.args.kwarg):
                    if arg is not None:
                        inner.add(arg.arg, _Binding("other", child.lineno))
                _collect(inner, child.body)
                self.functions.append(inner)
                if child.name == "forward" and class_name is not None:
                    returns = [n for n in _scope_nodes(child.body) if isinstance(n, ast.Return) and n.value]
                    if len(returns) == 1 and returns[0].lineno == returns[0].end_lineno:
                        self.returns[returns[0].lineno] = inner
                self._visit(child, inner, None)
            elif isinstance(child, ast.ClassDef):
                self._visit(child, scope, child.name)  # a class body is no scope for its methods
            else:
                self._visit(child, scope, class_name)

    def scope_at(self, line: int) -> _Scope:
        """The innermost function holding ``line`` (the module scope outside any)."""
        found = self._innermost[line] if 0 <= line < len(self._innermost) else None
        return found if found is not None else self.module


def _innermost_by_line(functions: Sequence[_Scope]) -> list[_Scope | None]:
    """Per line, the innermost of ``functions`` holding it (the one that starts last)."""
    table: list[_Scope | None] = [None] * (max((s.last_line for s in functions), default=0) + 1)
    for scope in sorted(functions, key=lambda s: s.first_line):  # stable: inner ones overwrite
        table[scope.first_line : scope.last_line + 1] = [scope] * (scope.last_line - scope.first_line + 1)
    return table


def _scope_nodes(body: Sequence[ast.stmt]):
    """Every node of a scope's body, not descending into nested scopes (which are yielded)."""
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _NESTED_SCOPES):
            stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _collect(scope: _Scope, body: list[ast.stmt]) -> None:
    top = {id(stmt) for stmt in body}
    handled: set[int] = set()
    for node in _scope_nodes(body):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                _assign(scope, target, node.value, node.lineno, id(node) in top, handled)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            _assign(scope, node.target, node.value, node.lineno, id(node) in top, handled)
    for node in _scope_nodes(body):
        names: list[str] = []
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load) and id(node) not in handled:
            names = [node.id]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in node.names]
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names = list(node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler)):
            names = [node.name] if node.name else []
        for name in names:
            scope.add(name, _Binding("other", getattr(node, "lineno", 0)))


def _assign(
    scope: _Scope, target: ast.expr, value: ast.expr, line: int, top: bool, handled: set[int]
) -> None:
    if isinstance(target, ast.Name):
        handled.add(id(target))
        shape = _shape_item(value)
        if shape is not None:
            scope.add(target.id, _Binding("shape", line, param=shape[0], index=shape[1], top_level=top))
        else:
            scope.add(target.id, _Binding("assign", line, expr=value))
    elif isinstance(target, (ast.Tuple, ast.List)):
        names = target.elts
        if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(names):
            for name, item in zip(names, value.elts):
                _assign(scope, name, item, line, top, handled)
            return
        param = _shape_of(value)
        starred = [i for i, name in enumerate(names) if isinstance(name, ast.Starred)]
        if param is None or len(starred) > 1:
            return  # left to the generic pass: bound, value unknown
        star = starred[0] if starred else len(names)
        for i, name in enumerate(names):
            if isinstance(name, ast.Name) and i != star:
                handled.add(id(name))
                index = i if i < star else i - len(names)
                scope.add(name.id, _Binding("shape", line, param=param, index=index, top_level=top))


def _shape_of(value: ast.expr) -> str | None:
    """``x`` for ``x.shape`` and ``x.size()``."""
    if isinstance(value, ast.Attribute) and value.attr == "shape" and isinstance(value.value, ast.Name):
        return value.value.id
    if (
        isinstance(value, ast.Call)
        and not value.args
        and not value.keywords
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "size"
        and isinstance(value.func.value, ast.Name)
    ):
        return value.func.value.id
    return None


def _shape_item(value: ast.expr) -> tuple[str, int] | None:
    """``(x, i)`` for ``x.shape[i]``, ``x.size()[i]`` and ``x.size(i)``."""
    if isinstance(value, ast.Subscript):
        param, index = _shape_of(value.value), _int_constant(value.slice)
        return (param, index) if param is not None and index is not None else None
    if (
        isinstance(value, ast.Call)
        and len(value.args) == 1
        and not value.keywords
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "size"
        and isinstance(value.func.value, ast.Name)
    ):
        index = _int_constant(value.args[0])
        return (value.func.value.id, index) if index is not None else None
    return None


def _int_constant(node: ast.expr) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_constant(node.operand)
        return -inner if inner is not None else None
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


# --- resolving a name at one run of one line ---------------------------------------------------


class Lookup:
    """The names of the comment on one line, at one run of it."""

    def __init__(self, resolver: Resolver, line: int, run: Run | None) -> None:
        self.resolver, self.line, self.run = resolver, line, run

    def __call__(self, name: str) -> Value | None:
        """The name's value, ``None`` when unknown."""
        return self.resolver.value(name, self.line, self.run, frozenset())

    def fixed(self, name: str) -> sympy.Expr | None:
        """What the name stands for in every run, when that is fixed: what torch specialised a
        dim to, or the number of a name that is no dim of the trace (``heads = 8``)."""
        specialised = self.resolver.specialised.get(name)
        if specialised is not None:
            return specialised
        if name in self.resolver.dims:
            return None
        found = self(name)
        return sympy.Integer(found.number) if found is not None and found.expr is None else None


class Resolver:
    """Looks up the names of the comments of one file (see the module docstring).

    ``specialised`` maps a dim torch fixed during the symbolic pass to what it fixed it to;
    ``divisible`` a dim to the number the pass assumed divides it (``SymbolicStatus.divisible``).
    """

    def __init__(
        self,
        names: SourceNames,
        modules: Sequence[ModuleCall],
        dims: dict[str, int],
        specialised: dict[str, sympy.Expr] | None = None,
        divisible: dict[str, int] | None = None,
    ) -> None:
        self.names = names
        self.modules = modules
        self.dims = dims
        self.specialised = specialised or {}
        self.divisible = divisible or {}

    def multiples(self, symbols: set[sympy.Symbol]) -> dict[sympy.Symbol, sympy.Expr]:
        """``H -> 4*H`` for each of ``symbols`` the pass assumed divisible (by 4): comparing
        after it compares the sizes the shapes were printed for."""
        return {sym: self.divisible[sym.name] * sym for sym in symbols if self.divisible.get(sym.name, 1) > 1}

    def lookup(self, line: int, run: Run | None) -> Lookup:
        """The names of the comment on ``line`` at ``run``."""
        return Lookup(self, line, run)

    def size_names(self, line: int) -> dict[str, int]:
        """The names the ``forward`` around ``line`` binds, before it, to a size of one of its
        tensor arguments (``B, C, H, W = x.shape``), in the order bound, each with the axis it
        reads (``W``: 3, ``D = x.shape[-1]``: -1)."""
        scope = self.names.scope_at(line)
        if scope.function != "forward":
            return {}
        return {
            name: bindings[0].index
            for name, bindings in scope.bindings.items()
            if len(bindings) == 1 and bindings[0].kind == "shape" and bindings[0].top_level and bindings[0].line < line
        }

    def value(self, name: str, line: int, run: Run | None, seen: frozenset[str]) -> Value | None:
        if name in seen:
            return None
        seen = seen | {name}
        scope: _Scope | None = self.names.scope_at(line)
        while scope is not None and scope.function is not None:
            if name in scope.bindings:
                return self._from_bindings(scope, scope.bindings[name], line, run, seen)
            scope = scope.parent
        if name in self.dims:
            return Value(int(self.dims[name]))
        module = self.names.module
        if name in module.bindings:
            return self._from_bindings(module, module.bindings[name], line, run, seen)
        assigned = self.names.in_functions.get(name, ())
        if assigned and all(b.kind == "assign" for b in assigned):
            values = {self._literal(b.expr, b.line, run, seen) for b in assigned}
            if len(values) == 1 and None not in values:
                return Value(values.pop())
        return None

    def _from_bindings(
        self, scope: _Scope, bindings: list[_Binding], line: int, run: Run | None, seen: frozenset[str]
    ) -> Value | None:
        if all(b.kind == "assign" for b in bindings):
            values = {self._literal(b.expr, b.line, run, seen) for b in bindings}
            return Value(values.pop()) if len(values) == 1 and None not in values else None
        if len(bindings) == 1 and bindings[0].kind == "shape":
            return self._argument_size(scope, bindings[0], line, run)
        return None

    def _literal(self, node: ast.expr | None, line: int, run: Run | None, seen: frozenset[str]) -> int | None:
        if isinstance(node, ast.Constant):
            return node.value if type(node.value) is int else None
        if isinstance(node, ast.Name):
            found = self.value(node.id, line, run, seen)
            return found.number if found is not None else None
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self._literal(node.operand, line, run, seen)
            return -inner if inner is not None else None
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            left = self._literal(node.left, line, run, seen)
            right = self._literal(node.right, line, run, seen)
            if left is None or right is None or (right == 0 and isinstance(node.op, (ast.FloorDiv, ast.Mod))):
                return None
            return _ARITHMETIC[type(node.op)](left, right)
        return None

    def _argument_size(self, scope: _Scope, binding: _Binding, line: int, run: Run | None) -> Value | None:
        """A ``forward`` argument's dim, read from the module call this run of the line is in."""
        param = binding.param
        if (
            run is None
            or run.context is None
            or scope.function != "forward"
            or not binding.top_level
            or binding.line >= line
            or param not in scope.params
            or scope.rebound_between(param, scope.first_line, binding.line)
        ):
            return None
        call = self.modules[run.context]
        if call.type != scope.class_name:
            return None
        position = scope.params.index(param)
        for meta in call.inputs:
            if meta.path in (f"[{position}]", f"[{param!r}]"):
                if not -len(meta.shape) <= binding.index < len(meta.shape):
                    return None
                expr = None
                if meta.expr is not None:
                    try:
                        expr = parse_shape(meta.expr)[binding.index]
                    except (NotAShape, IndexError):
                        expr = None
                return Value(int(meta.shape[binding.index]), expr)
        return None
