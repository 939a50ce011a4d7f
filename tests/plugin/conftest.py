"""The plugin's tests run pytest inside pytest (``pytester``, loaded by tests/conftest.py)."""

from __future__ import annotations

import pytest
import torch
from plugin_support import NET

import shapetrace


@pytest.fixture(scope="session", autouse=True)
def _torch_fully_imported() -> None:
    """pytester's in-process runs drop the modules they imported, and torch's C parts cannot be
    imported twice in one process (``TORCH_LIBRARY`` namespaces): a symbolic trace here imports
    what the inner runs use (the symbolic pass loads much of torch lazily)."""
    model, x = _Warm(), torch.rand(2, 3)
    with shapetrace.trace(model, dims="B F") as warm:
        model(x)
    assert warm.ops[-1].outputs[0].expr == "(B, 4)", warm.symbolic


class _Warm(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).relu()


@pytest.fixture
def net(pytester: pytest.Pytester) -> pytest.Pytester:
    """``pytester`` with ``net.py`` beside the tests (``Net``: Linear then unsqueeze; ``Pair``:
    jaxtyping-annotated)."""
    pytester.makepyfile(net=NET)
    return pytester
