"""What the pytest plugin does in a session that uses it: tracing whole tests, checking
contracts, shape snapshots, and the report sections of failing tests."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import pytest

from shapetrace.testing.report import trace_section
from shapetrace.testing.snapshots import SnapshotError, Snapshots
from shapetrace.trace import Trace, trace


class TestSession:
    """The plugin's state for one pytest session (created only when a feature is in use)."""

    __test__ = False  # not a test class, whatever pytest's name patterns say

    def __init__(self, config: pytest.Config, traces_key: pytest.StashKey[list]) -> None:
        self.traces_key = traces_key
        self.trace_all = bool(config.getoption("shapetrace_all"))
        self.contracts = bool(config.getoption("shapetrace_contracts"))
        update = bool(config.getoption("shapetrace_update"))
        snapshot = update or bool(config.getoption("shapetrace_snapshot"))
        self.snapshots = Snapshots(update, config.rootpath) if snapshot else None

    def runtest_call(self, item: pytest.Item, marked: bool) -> Generator[None, Any, Any]:
        """The test call, under a trace of the whole test when asked (``marked``: the test has the
        plugin's marker); then its snapshot."""
        traces = item.stash.setdefault(self.traces_key, [])
        kept = len(traces)  # the fixture's traces come after (and only those are snapshotted)
        if self.trace_all or self.contracts or marked:
            with trace(on_violation="raise" if self.contracts else "warn") as recorded:
                traces.append((f"test {item.name}", recorded))
                kept += 1
                result = yield
        else:
            result = yield
        if self.snapshots is not None:
            self._snapshot(item, traces[kept:])
        return result

    def _snapshot(self, item: pytest.Item, traces: Sequence[tuple[str, Trace]]) -> None:
        __tracebackhide__ = True
        assert self.snapshots is not None
        name = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else item.name
        if not traces:
            self.snapshots.forget(item.path, name)
            return
        try:
            failure = self.snapshots.check(item.path, name, traces)
        except SnapshotError as error:
            pytest.fail(f"shapetrace: {error}", pytrace=False)
        if failure is not None:
            pytest.fail(failure, pytrace=False)

    def finish(self) -> None:
        if self.snapshots is not None:
            self.snapshots.finish()

    def summary_lines(self) -> list[str]:
        summary = self.snapshots.summary() if self.snapshots is not None else ""
        return [summary] if summary else []


def add_trace_sections(report: pytest.TestReport, traces: Sequence[tuple[str, Trace]], width: int) -> None:
    """One report section per trace the failing test made: the table up to the failure and the
    diagnosis. A trace that cannot be rendered says why instead of hiding the test's failure."""
    for label, recorded in traces:
        try:
            text = trace_section(recorded, width)
        except Exception as error:  # the test's own failure must still be reported
            text = f"shapetrace could not render this trace: {type(error).__name__}: {error}\n"
        report.sections.append((f"shapetrace: trace of {label}", text))
