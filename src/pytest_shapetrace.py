"""shapetrace's pytest plugin, registered through the ``pytest11`` entry point.

- the ``shapes`` fixture: ``t = shapes(model, x, dims="B C H W")``, then ``t.assert_output("B N D")``;
- a test that traced and failed gets its trace and diagnosis as a report section;
- ``@pytest.mark.shapetrace`` traces one test that way, ``--shapetrace-all`` every test;
- ``--shapetrace-contracts`` checks the jaxtyping contracts of every module the tests call;
- ``--shapetrace-snapshot`` / ``--shapetrace-update`` keep each traced test's shapes in
  ``__shapes__/<test file>.txt`` beside the tests.

This module is what pytest imports in every session of an environment where shapetrace is
installed: it imports neither torch nor shapetrace until a test uses one of the features above.
docs/pytest.md describes the behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from shapetrace.testing.fixture import Shapes
    from shapetrace.testing.plugin_session import TestSession

TRACES = pytest.StashKey[list]()  # on an item: (label, Trace) of each trace made by the test
SESSION = pytest.StashKey["TestSession"]()  # on the config, when an option or the marker is in use
MARKER = "shapetrace"
OPTIONS = ("shapetrace_all", "shapetrace_contracts", "shapetrace_snapshot", "shapetrace_update")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("shapetrace", "shapetrace: shapes of PyTorch models")
    group.addoption(
        "--shapetrace-all",
        action="store_true",
        help="trace every test; a failing test's report gets its trace and diagnosis",
    )
    group.addoption(
        "--shapetrace-contracts",
        action="store_true",
        help="check the jaxtyping annotations of every module called in the tests; a violation fails the test",
    )
    group.addoption(
        "--shapetrace-snapshot",
        action="store_true",
        help="compare each traced test's op shapes with __shapes__/<test file>.txt (recording new ones)",
    )
    group.addoption(
        "--shapetrace-update",
        action="store_true",
        help="like --shapetrace-snapshot, but rewrite the snapshots that differ",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: trace this test; when it fails, its report gets the trace and the diagnosis"
    )
    if any(config.getoption(name) for name in OPTIONS):
        _session(config)


def _session(config: pytest.Config) -> TestSession:
    session = config.stash.get(SESSION, None)
    if session is None:
        from shapetrace.testing.plugin_session import TestSession

        session = config.stash[SESSION] = TestSession(config, TRACES)
    return session


@pytest.fixture
def shapes(request: pytest.FixtureRequest) -> Shapes:
    """Trace a call and assert its shapes: ``t = shapes(model, x, dims="B C H W")``, then
    ``t.assert_output("B N D")``, ``t.assert_op("cat", "(B, P + 1, D)")``,
    ``t.assert_line("torch.cat(", ...)``. When the test fails, its traces are in the report."""
    from shapetrace.testing.fixture import Shapes

    traces = request.node.stash.setdefault(TRACES, [])
    return Shapes(lambda label, recorded: traces.append((label, recorded)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    session = item.config.stash.get(SESSION, None)
    marked = item.get_closest_marker(MARKER) is not None
    if session is None and not marked:
        return (yield)
    return (yield from _session(item.config).runtest_call(item, marked))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    traces = item.stash.get(TRACES, None)
    if traces is None:
        return report
    if call.when == "call" and report.failed and traces:
        from shapetrace.testing.plugin_session import add_trace_sections

        add_trace_sections(report, traces, _width(item.config))
    elif call.when == "teardown":
        del item.stash[TRACES]  # items live as long as the session; traces need not
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    test_session = session.config.stash.get(SESSION, None)
    if test_session is not None:
        test_session.finish()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    test_session = config.stash.get(SESSION, None)
    if test_session is not None:
        for line in test_session.summary_lines():
            terminalreporter.write_line(line)


def _width(config: pytest.Config) -> int:
    if config.pluginmanager.get_plugin("terminalreporter") is None:
        return 120
    return max(100, config.get_terminal_writer().fullwidth)
