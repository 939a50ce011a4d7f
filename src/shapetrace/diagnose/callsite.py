"""The expression an op was called from, parsed with ``ast`` when a diagnosis needs it.

The recorder keeps ``(code, lasti)`` of the user's frame; the instruction's source positions
cover exactly the call (``torch.ones(N, N)``), operator (``x + y``) or subscript it runs, so
its keywords and operand expressions are read from the source at no cost to the hot path.
"""

from __future__ import annotations

import ast
import linecache
import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType
from typing import TYPE_CHECKING, Any, NamedTuple

from shapetrace.capture.source import positions
from shapetrace.diagnose.diagnostic import Edit
from shapetrace.diagnose.evidence import OperandRef

if TYPE_CHECKING:
    from shapetrace.trace import Trace

_OPERATOR_NODES = (ast.BinOp, ast.Compare, ast.UnaryOp, ast.Subscript, ast.AugAssign)


@dataclass(frozen=True)
class CallSite:
    """One parsed expression; ``source`` is the text its node positions refer to.

    When it was cut from a file, ``file`` and ``line`` say where ``source``'s first line is, and
    node columns map to the file's: ``first_col`` is added on that first line, ``indent`` on the
    others (byte columns, as ``ast`` counts them), so a fix can become an :class:`Edit`."""

    node: ast.AST
    source: str
    file: str | None = None
    line: int = 0
    first_col: int = 0
    indent: int = 0

    def text(self, node: ast.AST | None = None) -> str:
        """Source text of ``node`` (the whole expression by default), on one line."""
        segment = ast.get_source_segment(self.source, node or self.node) or ""
        return " ".join(segment.split())

    def rewritten(self, changes: Mapping[ast.AST, str], node: ast.AST | None = None) -> str:
        """The text of ``node`` (default: the whole expression) with each sub-node in ``changes``
        replaced by its new text, on one line."""
        node = node or self.node
        starts = _line_starts(self.source)
        begin, end = (
            _char_offset(self.source, starts, node.lineno, node.col_offset),
            _char_offset(self.source, starts, node.end_lineno, node.end_col_offset),
        )
        text = self.source[begin:end]
        for sub, new in sorted(
            changes.items(), key=lambda item: (item[0].lineno, item[0].col_offset), reverse=True
        ):
            a = _char_offset(self.source, starts, sub.lineno, sub.col_offset) - begin
            b = _char_offset(self.source, starts, sub.end_lineno, sub.end_col_offset) - begin
            if 0 <= a <= b <= len(text):
                text = text[:a] + new + text[b:]
        return " ".join(text.split())

    def grouped(self, node: ast.AST) -> ast.AST:
        """``node`` with the parentheses that group it, when an operator's operand is written
        ``(1 + scale)``: replacing that span by ``(1 + scale)[:, None]`` adds no second pair."""
        parent = next(
            (p for p in ast.walk(self.node) for child in ast.iter_child_nodes(p) if child is node), None
        )
        if not isinstance(parent, (ast.BinOp, ast.UnaryOp, ast.Compare)) or node.lineno != node.end_lineno:
            return node
        starts = _line_starts(self.source)
        begin = _char_offset(self.source, starts, node.lineno, node.col_offset)
        end = _char_offset(self.source, starts, node.end_lineno, node.end_col_offset)
        before, after = self.source[:begin].rstrip(), self.source[end:].lstrip()
        if not (before.endswith("(") and after.startswith(")")):
            return node
        line_start = starts[node.lineno - 1]
        if len(before) - 1 < line_start or end + (len(self.source[end:]) - len(after)) >= starts[node.lineno]:
            return node  # the parentheses are on other lines
        span = ast.expr()
        line = self.source[line_start : starts[node.lineno]]
        span.lineno = span.end_lineno = node.lineno
        span.col_offset = len(line[: len(before) - 1 - line_start].encode())
        span.end_col_offset = len(
            line[: end + (len(self.source[end:]) - len(after)) + 1 - line_start].encode()
        )
        return span

    def edits(self, changes: Mapping[ast.AST, str]) -> tuple[Edit, ...]:
        """``changes`` (sub-node -> new text) as edits of the file; ``()`` when the file is unknown."""
        if self.file is None:
            return ()
        found = []
        for node, new in changes.items():
            start = self._file_position(node.lineno, node.col_offset)
            end = self._file_position(node.end_lineno, node.end_col_offset)
            if start is None or end is None:
                return ()
            found.append(Edit(self.file, start[0], start[1], end[0], end[1], new))
        return tuple(found)

    def _file_position(self, lineno: int, byte_col: int) -> tuple[int, int] | None:
        line = self.line + lineno - 1
        byte_col += self.first_col if lineno == 1 else self.indent
        text = linecache.getline(self.file or "", line)
        if not text or byte_col < 0:
            return None
        return line, len(text.encode()[:byte_col].decode(errors="replace"))

    def keyword_change(self, name: str, value: str, call: ast.AST | None = None) -> dict[ast.AST, str]:
        """The change that gives the call ``call`` (default: the whole expression) ``name=value``:
        its keyword's value replaced, or the keyword added after the last argument."""
        call = call or self.node
        if not isinstance(call, ast.Call):
            return {}
        for keyword in call.keywords:
            if keyword.arg == name:
                return {keyword.value: value}
        last = max([*call.args, *(k.value for k in call.keywords)], key=lambda n: (n.end_lineno, n.end_col_offset),
                   default=None)  # fmt: skip
        if last is None:
            return {call: f"{self.text(call.func)}({name}={value})"}
        return {last: f"{self.rewritten({}, last)}, {name}={value}"}

    def argument(self, position: int, name: str, call: ast.AST | None = None) -> ast.expr | None:
        """The argument node given as keyword ``name`` or at ``position`` of the call."""
        call = call or self.node
        if not isinstance(call, ast.Call):
            return None
        for keyword in call.keywords:
            if keyword.arg == name:
                return keyword.value
        if any(isinstance(a, ast.Starred) for a in call.args[: position + 1]):
            return None
        return call.args[position] if position < len(call.args) else None

    @property
    def callee(self) -> str | None:
        """``ones`` for ``torch.ones(...)``, ``view`` for ``x.view(...)``."""
        if not isinstance(self.node, ast.Call):
            return None
        func = self.node.func
        return (
            func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        )

    def is_call_of(self, op_name: str) -> bool:
        """Whether this expression is the op itself (and not, say, a module call running it)."""
        if isinstance(self.node, ast.Call):
            return self.callee == op_name
        if isinstance(self.node, ast.Attribute):
            return self.node.attr == op_name
        return isinstance(self.node, _OPERATOR_NODES) and not op_name.isidentifier()

    def keywords(self) -> frozenset[str] | None:
        """Keyword names of the call; ``None`` when ``**kwargs`` may hide more."""
        if not isinstance(self.node, ast.Call) or any(k.arg is None for k in self.node.keywords):
            return None
        return frozenset(k.arg for k in self.node.keywords if k.arg)

    def keyword(self, name: str) -> ast.expr | None:
        if isinstance(self.node, ast.Call):
            for k in self.node.keywords:
                if k.arg == name:
                    return k.value
        return None

    def with_keyword(self, name: str, value: str) -> str:
        """The call's text with ``name=value`` added: ``torch.ones(N, N, device=x.device)``."""
        text = self.text()
        if not isinstance(self.node, ast.Call) or not text.endswith(")"):
            return text
        has_args = bool(self.node.args or self.node.keywords)
        head = text[:-1].rstrip().removesuffix(",")
        return f"{head}{', ' if has_args else ''}{name}={value})"

    def operand_nodes(self, n: int, method: bool, arguments: Any = None) -> list[ast.AST | None] | None:
        """The expressions of an op's ``n`` tensor operands, in the recorder's order, when they can
        be told apart: exactly with ``arguments`` (the failing call's :class:`CallArguments`),
        otherwise only when the non-constant operands are exactly ``n``."""
        node = self.node
        if isinstance(node, ast.Call):
            if any(isinstance(a, ast.Starred) for a in node.args):
                return None
            receiver = [node.func.value] if method and isinstance(node.func, ast.Attribute) else []
            if arguments is not None:
                return _mapped(receiver + list(node.args), node.keywords, arguments, n)
            values: list[ast.AST] = receiver + list(node.args) + [k.value for k in node.keywords]
            candidates = []
            for value in values:
                if isinstance(value, (ast.List, ast.Tuple)):
                    candidates.extend(e for e in value.elts if not _constant(e))
                elif not _constant(value):
                    candidates.append(value)
            if len(candidates) == n:
                return candidates
            return (
                [*receiver, *[None] * (n - 1)] if receiver and n else None
            )  # a method's receiver is its self
        if isinstance(node, ast.BinOp):
            pair = [node.left, node.right]
        elif isinstance(node, ast.AugAssign):
            pair = [node.target, node.value]
        elif isinstance(node, ast.Compare) and len(node.comparators) == 1:
            pair = [node.left, node.comparators[0]]
        elif isinstance(node, ast.Subscript):
            if n == 1:
                return [node.value]
            pair = [node.value, node.slice]
        elif isinstance(node, (ast.UnaryOp, ast.Attribute)):
            pair = [node.operand if isinstance(node, ast.UnaryOp) else node.value]
        else:
            return None
        if len(pair) == n:
            return pair
        if n == 1:
            variable = [e for e in pair if not _constant(e)]
            return variable if len(variable) == 1 else None
        return None


_NOT_TENSORS = {"float", "int", "bool", "len", "str", "slice", "range", "tuple", "list"}


def _constant(node: ast.AST) -> bool:
    """Whether an argument is surely not a tensor: a literal, or a builtin's result."""
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _NOT_TENSORS:
        return True
    return isinstance(node, (ast.Constant, ast.JoinedStr, ast.Lambda))


def _mapped(
    args: list[ast.AST], keywords: list[ast.keyword], arguments: Any, n: int
) -> list[ast.AST | None] | None:
    """Operand expressions from the failing call's arguments, where each tensor is an ``OperandRef``."""
    found: list[ast.AST | None] = [None] * n
    by_name = {k.arg: k.value for k in keywords if k.arg}
    pairs = list(zip(args, arguments.args)) + [
        (by_name[name], value) for name, value in arguments.kwargs if name in by_name
    ]
    for node, value in pairs:
        if isinstance(value, OperandRef) and value.index < n:
            found[value.index] = node
        elif isinstance(value, (list, tuple)):
            elements = node.elts if isinstance(node, (ast.List, ast.Tuple)) else None
            for j, item in enumerate(value):
                if isinstance(item, OperandRef) and item.index < n:
                    found[item.index] = elements[j] if elements is not None and j < len(elements) else None
    return found


@lru_cache(maxsize=4096)
def call_site_at(code: CodeType, lasti: int) -> CallSite | None:
    """The expression the instruction at ``lasti`` of ``code`` executes, or ``None``."""
    found = positions(code)
    index = lasti // 2
    if not 0 <= index < len(found) or None in found[index]:
        return None
    line, end_line, col, end_col = found[index]
    lines = [linecache.getline(code.co_filename, n) for n in range(line, end_line + 1)]
    if not all(lines):
        return None
    if line == end_line:
        segment = lines[0].encode()[col:end_col].decode(errors="replace")
    else:
        segment = (
            lines[0].encode()[col:].decode(errors="replace")
            + "".join(lines[1:-1])
            + lines[-1].encode()[:end_col].decode(errors="replace")
        )
    source = f"({segment})"
    try:
        return CallSite(ast.parse(source, mode="eval").body, source, code.co_filename, line, col - 1)
    except SyntaxError:
        pass
    source = textwrap.dedent(segment)
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    if len(body) == 1 and isinstance(body[0], ast.AugAssign):
        return CallSite(body[0], source)  # dedented: no file positions
    return None


def call_site(trace: Trace, op_index: int) -> CallSite | None:
    """The expression op ``op_index`` of ``trace`` was called from."""
    entry = trace.recording.ops[op_index]
    return call_site_at(entry.code, entry.lasti) if entry.code is not None else None


def module_call_site(trace: Trace, call_index: int) -> CallSite | None:
    """The expression that called module call ``call_index`` (``self.fc1(t)``, ``model(x)``);
    ``None`` when its recorded line called a helper that called the module (``shapes(model, x)``),
    whose arguments are not the module's."""
    if call_index in trace.recording.indirect_calls:
        return None
    entry = trace.recording.modules[call_index]
    return call_site_at(entry.code, entry.lasti) if entry.code is not None else None


class Assignment(NamedTuple):
    """``self.<name> = value`` in a class's source: where it is, the value's text, and the parsed
    statement (``site.node``) for edits."""

    file: str
    line: int
    text: str
    site: CallSite

    @property
    def value(self) -> ast.expr:
        return self.site.node.value  # type: ignore[attr-defined]


@lru_cache(maxsize=256)
def assignment_of(owner: type, name: str) -> Assignment | None:
    """Where a method of ``owner`` (or a base class) does ``self.<name> = value``."""
    for cls in owner.__mro__:
        if cls.__module__.startswith("torch.") or cls is object:
            continue
        found = class_source(cls)
        if found is None:
            continue
        file, source, class_node = found
        for node in ast.walk(class_node):
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets = [node.target]
            else:
                continue
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == name
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    site = CallSite(node, source, file, 1)
                    return Assignment(file, node.lineno, site.text(node.value), site)
    return None


def class_source(cls: type) -> tuple[str, str, ast.ClassDef] | None:
    """The file, its text and the class statement of ``cls``, found through its methods' code
    (a class of a script run as ``__main__`` is found after the run, unlike with ``inspect``)."""
    for value in vars(cls).values():
        function = getattr(value, "__func__", value)
        code = getattr(function, "__code__", None)
        if code is None:
            continue
        parsed = _parsed_file(code.co_filename, _modified(code.co_filename))
        if parsed is None:
            continue
        source, tree = parsed
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ClassDef) and node.name == cls.__name__
                and node.lineno <= code.co_firstlineno <= (node.end_lineno or node.lineno)
            ):  # fmt: skip
                return code.co_filename, source, node
    return None


def _modified(file: str) -> int | None:
    try:
        return os.stat(file).st_mtime_ns
    except OSError:
        return None


@lru_cache(maxsize=64)
def _parsed_file(file: str, modified: int | None) -> tuple[str, ast.Module] | None:
    """The text and syntax tree of ``file`` (as it was when last ``modified``)."""
    if modified is not None:
        linecache.checkcache(file)
    source = "".join(linecache.getlines(file))
    if not source:
        return None
    try:
        return source, ast.parse(source)
    except SyntaxError:
        return None


def _line_starts(source: str) -> list[int]:
    starts = [0]
    for text in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(text))
    return starts


def _char_offset(source: str, starts: list[int], lineno: int, byte_col: int) -> int:
    """The offset in ``source`` of line ``lineno`` (from 1), byte column ``byte_col``."""
    begin = starts[lineno - 1]
    end = starts[lineno] if lineno < len(starts) else len(source)
    return begin + len(source[begin:end].encode()[:byte_col].decode(errors="replace"))
