"""Where the user called an op from, and which operator they wrote.

The recorder keeps only ``(code object, instruction offset)`` of the first frame outside
torch, shapetrace and the type checkers; line, column and the operator symbol are decoded
from them when the trace is read, once per code location.
"""

from __future__ import annotations

import dis
import importlib.util
import io
import linecache
import os
import re
import sys
import tokenize
from collections.abc import Callable
from functools import cache, lru_cache
from types import CodeType, FrameType, FunctionType
from typing import Any

import torch.overrides

_LIBRARY_PACKAGES = ("torch", "shapetrace", "jaxtyping", "typeguard", "beartype", "einops", "wadler_lindig")
_LIBRARY_MODULES = ("contextlib", "functools")


def _library_roots() -> tuple[str, ...]:
    roots = []
    for name in _LIBRARY_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            roots.extend(os.path.join(loc, "") for loc in spec.submodule_search_locations)
    for name in _LIBRARY_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            roots.append(spec.origin)
    return tuple(roots)


LIBRARY_ROOTS = _library_roots()

# id(code object) -> True when it belongs to a library whose frames are skipped. Read on the hot
# path, so keyed by id: a code object's hash is not cached (0.5 us for Module._call_impl's, per
# lookup) and equal code objects of different files would share an entry. Each code keyed here or
# in `callers` is kept in _codes, so that its id stays its own while it is a key.
library_code: dict[int, bool] = {}
_codes: dict[int, CodeType] = {}


def is_library_code(code: CodeType) -> bool:
    """Whether frames of ``code`` are skipped when looking for the user's line (cached)."""
    known = library_code.get(id(code))
    if known is None:
        known = library_code[id(code)] = code.co_filename.startswith(LIBRARY_ROOTS)
        _codes[id(code)] = code
    return known


def user_frame(frame: FrameType | None) -> FrameType | None:
    """The first frame at or above ``frame`` that is not library code (once per module call)."""
    while frame is not None:
        skip = library_code.get(id(frame.f_code))
        if skip is None:
            skip = is_library_code(frame.f_code)
        if not skip:
            return frame
        frame = frame.f_back
    return None


_TORCH_ROOT = os.path.join(os.path.dirname(torch.overrides.__file__), "")
# torch's plumbing: building modules, Module.to/_apply, parameters, optimizers, autograd, data
# loading. Ops made on its behalf outside any forward are not the user's ops.
_TORCH_PLUMBING = tuple(
    _TORCH_ROOT + part for part in ("nn/modules/", "nn/parameter.py", "optim/", "autograd/", "utils/")
)


def called_by_torch_internals(caller: FrameType) -> bool:
    """Whether an op was made by torch's plumbing on its own behalf (building a module,
    ``Module.to``, an optimizer step): some frame between the op and the user's frame belongs to
    it. Ops the user asked for through a torch function (``F.dropout``) or a helper
    (``nn.init.zeros_``) pass only through other torch code."""
    frame: FrameType | None = caller
    while frame is not None and is_library_code(frame.f_code):
        if frame.f_code.co_filename.startswith(_TORCH_PLUMBING):
            return True
        frame = frame.f_back
    return False


# --- decoding a call site ----------------------------------------------------------------------

# BINARY_OP argument -> symbol, fixed since CPython 3.11 (NB_* constants, in-place forms from 13).
_NB_SYMBOLS = ("+", "&", "//", "<<", "@", "*", "%", "|", "**", ">>", "-", "/", "^")
_BINARY_OP_SYMBOLS = _NB_SYMBOLS + tuple(s + "=" for s in _NB_SYMBOLS) + ("[]",)
_COMPARE_SHIFT = 5 if sys.version_info >= (3, 13) else 4 if sys.version_info >= (3, 12) else 0
_SIMPLE_OPCODES = {
    "BINARY_SUBSCR": "[]",
    "STORE_SUBSCR": "[]=",
    "UNARY_NEGATIVE": "-",
    "UNARY_INVERT": "~",
}


@cache
def positions(code: CodeType) -> tuple[tuple[int | None, ...], ...]:
    """``code.co_positions()`` (line, end line, column, end column per instruction), once per code."""
    return tuple(code.co_positions())


def line_of(code: CodeType, lasti: int) -> int:
    """The source line of the instruction at byte offset ``lasti``."""
    found = positions(code)
    index = lasti // 2
    if 0 <= index < len(found) and found[index][0] is not None:
        return found[index][0]
    return code.co_firstlineno


@cache
def operator_at(code: CodeType, lasti: int) -> str | None:
    """The operator symbol (``+``, ``@``, ``[]`` ...) executing at ``lasti``, or ``None`` for a call."""
    raw = code.co_code
    if not 0 <= lasti < len(raw) - 1:
        return None
    name = dis.opname[raw[lasti]]
    arg = raw[lasti + 1]
    if name == "BINARY_OP":
        return _BINARY_OP_SYMBOLS[arg] if arg < len(_BINARY_OP_SYMBOLS) else None
    if name == "COMPARE_OP":
        index = arg >> _COMPARE_SHIFT
        return dis.cmp_op[index] if index < len(dis.cmp_op) else None
    return _SIMPLE_OPCODES.get(name)


def source_line(file: str, line: int) -> str:
    """The stripped source text of ``file:line`` (``""`` when unavailable)."""
    return linecache.getline(file, line).strip()


@lru_cache(maxsize=4096)
def code_without_comment(code: str) -> str:
    """``code`` without its trailing comment (a ``#`` inside a string is kept)."""
    if "#" not in code:
        return code
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type == tokenize.COMMENT:
                return code[: token.start[1]].rstrip()
    except (tokenize.TokenError, SyntaxError):
        pass
    return code


def short_location(file: str, line: int) -> str:
    """``name.py:12``: tables and footers show file names; JSON keeps full paths. A notebook
    cell's line reads ``In [3]:2``."""
    return f"{notebook_cell(file) or os.path.basename(file) or file}:{line}"


def display_path(file: str) -> str:
    """``file`` relative to the working directory when it lies below it; ``In [3]`` for a notebook cell."""
    cell = notebook_cell(file)
    if cell is not None:
        return cell
    try:
        rel = os.path.relpath(file)
    except ValueError:
        return file
    return file if rel.startswith("..") else rel


def notebook_cell(file: str) -> str | None:
    """``In [3]`` when ``file`` is the name IPython compiled input cell 3 under (a temporary
    file name such as ``/tmp/ipykernel_71/140795790.py``), else ``None``. Asks the running
    IPython, if one is: IPython is never imported here."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    name_of = getattr(getattr(shell, "compile", None), "format_code_name", None)  # ("Cell", "In[3]") in tracebacks
    named = name_of(file) if callable(name_of) else None
    number = _CELL_NUMBER.search(named[1]) if isinstance(named, tuple) and len(named) == 2 else None
    return f"In [{number.group(1)}]" if number else None


_CELL_NUMBER = re.compile(r"^In\s*\[(\d+)\]$")


# --- calls made at the user's line --------------------------------------------------------------

AT_LINE_CODES: set[CodeType] = set()  # code objects of the callers below (tracebacks may hide them)


def caller_at(code: CodeType, lasti: int, globals_: dict) -> Callable[[Callable, tuple, dict | None], Any]:
    """A function that calls ``func(*args, **kwargs)`` from ``code``'s file and the line of
    ``lasti``, in the module ``globals_``: a warning torch raises inside the call (C++ warnings
    name the innermost Python frame) is then attributed to the user's line and counted in the
    user's module's warning registry, as without a trace. Cached per call site, and made again
    for other module globals: code objects compare equal across files and across runs of one
    file, and a run's globals must not be kept, nor its warnings counted in another's."""
    by_offset = callers.get(id(code))
    if by_offset is None:
        site = (code.co_filename, code.co_qualname, code.co_firstlineno)
        older = _site_codes.get(site)
        if older is not None and older != id(code):  # the same function compiled again (a script re-run):
            for cache in (callers, library_code, _codes):  # forget the old code, its callers and their globals
                cache.pop(older, None)
        _site_codes[site] = id(code)
        by_offset = callers[id(code)] = {}
        _codes[id(code)] = code
    caller = by_offset.get(lasti)
    if caller is None or caller.__globals__ is not globals_:
        caller = by_offset[lasti] = _make_caller(code, line_of(code, lasti), globals_)
    return caller


callers: dict[int, dict[int, Callable]] = {}  # id(code) -> instruction offset -> caller (as library_code)
_site_codes: dict[tuple[str, str, int], int] = {}  # (file, function, first line) -> id of its code in callers
_CALL = "func(*args, **kwargs) if kwargs else func(*args)"


def _function_code(source: str) -> CodeType:
    compiled = compile(source, "<caller>", "exec", dont_inherit=True)
    return next(c for c in compiled.co_consts if isinstance(c, CodeType))


# A def whose return statement sits on its second line (pytest hides its frame), moved to the
# user's line by `co_firstlineno` (line numbers are relative to it): no source of `line` lines.
_CALLER = _function_code(f"def _call(func, args, kwargs):\n    __tracebackhide__ = True; return {_CALL}")
_FIRST_LINE_CALLER = _function_code(f"_call = lambda func, args, kwargs: {_CALL}")


def _make_caller(code: CodeType, line: int, globals_: dict) -> Callable:
    template, first_line = (_CALLER, line - 1) if line > 1 else (_FIRST_LINE_CALLER, 1)
    body = template.replace(
        co_filename=code.co_filename, co_firstlineno=first_line, co_name=code.co_name,
        # an unused constant naming the site: a code's hash ignores its file and line, and the
        # callers of one function would all collide in AT_LINE_CODES and library_code
        co_consts=(*template.co_consts, (code.co_filename, line)),
    )  # fmt: skip
    AT_LINE_CODES.add(body)
    library_code[id(body)] = True  # not the user's frame: walks for the user's line pass over it
    _codes[id(body)] = body
    return FunctionType(body, globals_, code.co_name)
