"""Helpers for the contract tests (fixtures are in conftest.py)."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

from rich.console import Console

ANNOTATED = Path(__file__).resolve().parents[2] / "examples" / "annotated"
ANNOTATED_NAMES = sorted(path.stem for path in ANNOTATED.glob("*.py"))


def load_annotated(name: str) -> ModuleType:
    """Import ``examples/annotated/<name>.py`` (its ``main()`` is not run)."""
    module_name = f"shapetrace_annotated_examples.{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, ANNOTATED / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def render(renderable, width: int = 220) -> str:
    console = Console(record=True, width=width, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()
