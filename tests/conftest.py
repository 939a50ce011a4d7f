"""Shared fixtures: the seed models in examples/ are the test fixtures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# tests/plugin/ runs pytest inside pytest (pytest_plugins is honoured only in this top conftest).
pytest_plugins = ["pytester"]


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (its ``main()`` is not run)."""
    path = EXAMPLES / f"{name}.py"
    module_name = f"shapetrace_examples.{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def examples():
    """``examples.load("patch_embed")`` imports that example; ``examples.path("mlp")`` is its file."""

    class Examples:
        load = staticmethod(load_example)

        @staticmethod
        def path(name: str) -> Path:
            return EXAMPLES / f"{name}.py"

    return Examples()


@pytest.fixture
def dispatches():
    """``with dispatches() as seen:`` records the aten ops dispatched inside it (``seen.seen``):
    what the symbolic pass makes without the fake mode's dispatch dispatches nothing."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Dispatches(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.seen.append(func)
            return func(*args, **(kwargs or {}))

    return Dispatches


@pytest.fixture(autouse=True)
def generous_default_budget(monkeypatch):
    """The default budget (the larger of 2 s and 5x the forward) is for users; a loaded test
    machine can take longer than that on a tiny model's first pass. Tests that are not about
    the budget get 60 s (tests/symbolic/test_symbolic_budget.py overrides this fixture)."""
    from shapetrace.symbolic import job

    monkeypatch.setattr(job, "MIN_BUDGET", 60.0)
