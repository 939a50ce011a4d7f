"""Fixtures for the shape-comment tests: run the CLI in-process, copy examples, trace a small
module written to a temporary file, and give a trace the symbolic ``expr``/``dims`` the symbolic
pass would (so the symbolic rules are tested before and independently of that pass)."""

from __future__ import annotations

import importlib.util
import linecache
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from comments_support import EXAMPLES

from shapetrace import trace
from shapetrace.cli.main import main


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")


@pytest.fixture
def cli(capsys):
    """``cli("--check", path)`` -> ``(exit code, stdout, stderr)`` of ``shapetrace`` run in-process."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def example_copy(tmp_path, monkeypatch):
    """``example_copy("mlp")`` copies examples/mlp.py into a temporary working directory."""
    monkeypatch.chdir(tmp_path)

    def copy(name: str) -> Path:
        target = tmp_path / f"{name}.py"
        shutil.copyfile(EXAMPLES / f"{name}.py", target)
        return target

    return copy


@pytest.fixture
def traced(tmp_path, monkeypatch):
    """``traced(source)`` writes ``source`` to a module file, imports it, calls its ``run()``
    under ``trace()`` and returns ``(trace, path)``."""
    monkeypatch.chdir(tmp_path)
    count = 0

    def run(source: str, name: str = "model") -> tuple:
        nonlocal count
        count += 1
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        linecache.checkcache(str(path))
        module_name = f"shapetrace_comment_test_{name}_{count}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
            with trace() as t:
                module.run()
        finally:
            del sys.modules[module_name]
        return t, path

    return run
