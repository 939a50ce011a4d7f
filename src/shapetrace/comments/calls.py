"""Which user functions a line calls, read from the source: the ops of those functions (and of
the functions they call, by name) run on behalf of that line."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Mapping

from shapetrace.comments.source import SourceFile


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _calls_in(node: ast.AST, skip_statements: bool) -> set[str]:
    names: set[str] = set()
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        if skip_statements and isinstance(child, ast.stmt):
            continue
        if isinstance(child, ast.Call):
            name = _call_name(child)
            if name:
                names.add(name)
        stack.extend(ast.iter_child_nodes(child))
    return names


def _returns_a_value(function: ast.AST) -> bool:
    return any(isinstance(node, ast.Return) and node.value is not None for node in ast.walk(function))


class CallGraph:
    """Function definitions and call sites of the user's files, by name."""

    def __init__(self, sources: Mapping[str, SourceFile]) -> None:
        self.bodies: dict[str, list[ast.AST]] = defaultdict(list)  # function name -> its definitions
        self.line_calls: dict[str, dict[int, set[str]]] = {}  # file -> line -> names its statement calls
        self.callers: dict[str, set[tuple[str, int, bool]]] = defaultdict(set)  # name -> (file, line, bare)
        self._callees: dict[tuple[str, int], frozenset[str]] = {}
        self._function_by_line: dict[str, list[str | None]] = {}  # file -> line -> innermost function
        self._sole_callers: dict[tuple[str, int], tuple[str, int] | None] = {}
        for path, source in sources.items():
            if source.tree is not None:
                self._index(path, source.tree)

    def _index(self, path: str, tree: ast.Module) -> None:
        line_calls: dict[int, set[str]] = {}
        functions = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.bodies[node.name].append(node)
                functions.append((node.lineno, node.end_lineno or node.lineno, node.name))
            if isinstance(node, ast.stmt):
                inner = [getattr(node, field, None) for field in ("body", "orelse", "finalbody", "handlers")]
                starts = [block[0].lineno for block in inner if isinstance(block, list) and block]
                last = min(starts) - 1 if starts else (node.end_lineno or node.lineno)
                calls = _calls_in(node, skip_statements=True)
                for name in calls:
                    self.callers[name].add((path, node.lineno, isinstance(node, ast.Expr)))
                for line in range(node.lineno, max(last, node.lineno) + 1):
                    line_calls[line] = calls  # ast.walk is breadth first: inner statements win
        self.line_calls[path] = line_calls
        by_line: list[str | None] = [None] * (max((last for _, last, _ in functions), default=0) + 1)
        for first, last, name in sorted(functions):  # outer first: inner ones overwrite
            by_line[first : last + 1] = [name] * (last - first + 1)
        self._function_by_line[path] = by_line

    def callees(self, file: str, line: int) -> frozenset[str]:
        """The names of the functions the statement at ``file:line`` calls, and those they call."""
        known = self._callees.get((file, line))
        if known is not None:
            return known
        found: set[str] = set()
        todo = list(self.line_calls.get(file, {}).get(line, ()))
        while todo:
            name = todo.pop()
            if name in found or name not in self.bodies:
                continue
            found.add(name)
            for body in self.bodies[name]:
                todo.extend(_calls_in(body, skip_statements=False))
        self._callees[(file, line)] = frozenset(found)
        return self._callees[(file, line)]

    def calls_at(self, file: str, line: int) -> set[str]:
        """The names the statement at ``file:line`` calls itself (``rearrange``, ``view``)."""
        return self.line_calls.get(file, {}).get(line, set())

    def sole_caller(self, file: str, line: int) -> tuple[str, int] | None:
        """The one statement (file, first line) that calls the function around ``file:line`` by
        name and uses what it returns, when only one statement calls it: every run of that
        function is on its behalf. ``None`` for a function that returns nothing, or whose call
        is a statement of its own (``main()``)."""
        key = (file, line)
        if key not in self._sole_callers:
            self._sole_callers[key] = self._find_sole_caller(file, line)
        return self._sole_callers[key]

    def _find_sole_caller(self, file: str, line: int) -> tuple[str, int] | None:
        function = self.function_at(file, line)
        if function is None or len(self.bodies.get(function, ())) != 1:
            return None
        callers = self.callers.get(function, ())
        if len(callers) != 1 or not _returns_a_value(self.bodies[function][0]):
            return None
        caller_file, caller_line, bare = next(iter(callers))
        return None if bare else (caller_file, caller_line)

    def function_at(self, file: str, line: int) -> str | None:
        """The innermost function defined around ``file:line``."""
        by_line = self._function_by_line.get(file, ())
        return by_line[line] if 0 <= line < len(by_line) else None

    def is_callee(self, site: tuple[str, int], file: str, line: int) -> bool:
        """Whether code at ``file:line`` belongs to a function the line at ``site`` calls."""
        function = self.function_at(file, line)
        return function is not None and function in self.callees(*site)
