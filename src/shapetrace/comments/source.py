"""A traced source file as bytes and lines: encoding, line endings, trailing comments, the lines
a comment can end, and the scope (function, class, module) each line belongs to."""

from __future__ import annotations

import ast
import io
import os
import re
import sys
import sysconfig
import tokenize
from dataclasses import dataclass, field

from shapetrace.capture.source import LIBRARY_ROOTS

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r|$)")
_CODE_TOKENS_SKIPPED = {
    tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER,
}  # fmt: skip


class SourceError(Exception):
    """A traced file cannot be read or parsed; the message says which and why."""


def split_lines(text: str) -> list[str]:
    """Lines with their endings (``\\n``, ``\\r\\n`` or ``\\r``), as Python numbers them."""
    lines = [m.group(0) for m in _LINE.finditer(text)]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


@dataclass
class SourceFile:
    """One file: its bytes, decoded lines (endings kept) and what tokenize and ast say about them."""

    path: str
    data: bytes
    encoding: str
    lines: list[str]
    comments: dict[int, tuple[int, str]] = field(default_factory=dict)  # line -> (column, text)
    commentable: set[int] = field(default_factory=set)
    tree: ast.Module | None = None
    scopes: dict[int, int] = field(default_factory=dict)  # line -> first line of its def/class (0: module)

    @classmethod
    def read(cls, path: str) -> SourceFile:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as error:
            raise SourceError(f"{path}: cannot read it ({error.strerror or error})") from None
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
            text = data.decode(encoding)
        except (SyntaxError, UnicodeDecodeError, LookupError) as error:
            raise SourceError(f"{path}: cannot decode it ({error})") from None
        source = cls(path, data, encoding, split_lines(text))
        source._tokenize()
        try:
            source.tree = ast.parse(text, filename=path)
        except (SyntaxError, ValueError) as error:
            raise SourceError(f"{path}: does not parse ({error})") from None
        source._index_scopes()
        return source

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def line_text(self, number: int) -> str:
        """Line ``number`` (from 1) without its ending."""
        return self.lines[number - 1].rstrip("\r\n") if 0 < number <= len(self.lines) else ""

    def ending(self, number: int) -> str:
        line = self.lines[number - 1]
        return line[len(line.rstrip("\r\n")) :]

    def code(self, number: int) -> str:
        """Line ``number`` without its trailing comment and trailing whitespace."""
        text = self.line_text(number)
        comment = self.comments.get(number)
        return (text[: comment[0]] if comment else text).rstrip()

    def _tokenize(self) -> None:
        code_rows: set[int] = set()
        comments: list[tuple[int, int, str]] = []
        ends: list[int] = []
        try:
            for token in tokenize.generate_tokens(iter(self.lines).__next__):
                if token.type == tokenize.COMMENT:
                    comments.append((token.start[0], token.start[1], token.string))
                elif token.type in (tokenize.NEWLINE, tokenize.NL):
                    ends.append(token.start[0])
                elif token.type not in _CODE_TOKENS_SKIPPED:
                    code_rows.update(range(token.start[0], token.end[0] + 1))
        except (tokenize.TokenError, SyntaxError, StopIteration) as error:
            raise SourceError(f"{self.path}: does not tokenize ({error})") from None
        self.comments = {row: (col, text) for row, col, text in comments if row in code_rows}
        self.commentable = {row for row in ends if row in code_rows}

    def _index_scopes(self) -> None:
        def visit(node: ast.AST, scope: int) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    start = child.lineno
                    for line in range(start, (child.end_lineno or start) + 1):
                        self.scopes[line] = start
                    visit(child, start)
                else:
                    visit(child, scope)

        assert self.tree is not None
        visit(self.tree, 0)

    def scope(self, number: int) -> int:
        """First line of the innermost ``def``/``class`` holding line ``number`` (0: module level)."""
        return self.scopes.get(number, 0)


# --- which files are the user's ----------------------------------------------------------------


def _library_dirs() -> tuple[str, ...]:
    dirs = {os.path.realpath(root) for root in LIBRARY_ROOTS}
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if key in paths:
            dirs.add(os.path.realpath(paths[key]))
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        dirs.add(os.path.realpath(os.path.join(prefix, "lib")))
    return tuple(os.path.join(d, "") if os.path.isdir(d) else d for d in dirs)


_LIBRARY_DIRS = _library_dirs()


def is_user_file(path: str) -> bool:
    """Whether ``path`` is the user's own source: a file on disk outside the standard library,
    site-packages and the libraries shapetrace skips (torch, shapetrace, ...)."""
    if not path or path.startswith("<") or not os.path.isfile(path):
        return False
    real = os.path.realpath(path)
    if real.startswith(_LIBRARY_DIRS):
        return False
    parts = real.split(os.sep)
    return "site-packages" not in parts and "dist-packages" not in parts
