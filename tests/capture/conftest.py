"""Every capture test runs on both recorders: the pure-Python one and, when its extension is built,
the one whose hot paths run in C (docs/capture.md, "A compiled hot path")."""

from __future__ import annotations

import pytest

from shapetrace.capture import recorder

RECORDERS = {"python": recorder.Recorder}
if recorder.HAS_COMPILED:
    RECORDERS["C"] = recorder.CompiledRecorder


@pytest.fixture(autouse=True, params=list(RECORDERS))
def hot_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The recorder every trace of this test uses: ``"python"`` or ``"C"``."""
    monkeypatch.setattr(recorder, "TRACE_RECORDER", RECORDERS[request.param])
    return request.param
