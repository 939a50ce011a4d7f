"""Fixtures for the contract tests: the small annotated models in contract_models.py."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture
def models() -> ModuleType:
    import contract_models

    return contract_models
