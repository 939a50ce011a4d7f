"""Shape snapshots: recorded next to the tests, compared on later runs with a readable diff,
rewritten on request, and the same bytes on every machine."""

from __future__ import annotations

import pytest
from plugin_support import write_tests

TESTS = """
    import torch
    from net import Net

    def test_net(shapes):
        shapes(Net(), torch.rand(2, 8), dims="B F").assert_output("B 1 4")

    def test_two_calls(shapes):
        shapes(Net(), torch.rand(2, 8), dims="B F")
        shapes(Net(out=OUT), torch.rand(3, 8), dims="B F")

    def test_untraced():
        assert True
"""

SNAPSHOT = """\
# shapetrace shape snapshots of test_model.py: each test's traced calls, one row per op
# (op, module, output shapes). Checked by pytest --shapetrace-snapshot; rewritten by
# pytest --shapetrace-update.

## test_net
trace: Net
  linear       fc                       (B, 4)
  unsqueeze    Net                      (B, 1, 4)

## test_two_calls
trace 1: Net
  linear       fc                       (B, 4)
  unsqueeze    Net                      (B, 1, 4)
trace 2: Net
  linear       fc                       (B, 6)
  unsqueeze    Net                      (B, 1, 6)
"""


def write_net_tests(net: pytest.Pytester, out: int) -> None:
    write_tests(net, TESTS.replace("OUT", str(out)))


def test_first_run_records_and_later_runs_compare(net):
    write_net_tests(net, out=6)
    snapshot = net.path / "__shapes__" / "test_model.txt"
    result = net.runpytest("--shapetrace-snapshot")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["shapetrace: shape snapshots 2 written"])
    assert snapshot.read_text() == SNAPSHOT

    again = net.runpytest("--shapetrace-snapshot")
    again.assert_outcomes(passed=3)
    assert "shape snapshots" not in again.stdout.str()
    assert snapshot.read_text() == SNAPSHOT


def test_a_changed_shape_fails_with_a_diff_until_updated(net):
    write_net_tests(net, out=6)
    net.runpytest("--shapetrace-snapshot").assert_outcomes(passed=3)
    snapshot = net.path / "__shapes__" / "test_model.txt"

    write_net_tests(net, out=5)
    changed = net.runpytest("--shapetrace-snapshot")
    changed.assert_outcomes(passed=2, failed=1)
    changed.stdout.fnmatch_lines([
        "*_ test_two_calls _*",
        "shape snapshot of test_two_calls changed:",
        "--- __shapes__/test_model.txt, ## test_two_calls (snapshot)",
        "+++ this run",
        "@@ -3,4 +3,4 @@",
        "   unsqueeze    Net                      (B, 1, 4)",
        " trace 2: Net",
        "-  linear       fc                       (B, 6)",
        "-  unsqueeze    Net                      (B, 1, 6)",
        "+  linear       fc                       (B, 5)",
        "+  unsqueeze    Net                      (B, 1, 5)",
        "Accept the new shapes with: pytest --shapetrace-update",
    ])  # fmt: skip
    assert snapshot.read_text() == SNAPSHOT  # a failing comparison writes nothing

    updated = net.runpytest("--shapetrace-update")
    updated.assert_outcomes(passed=3)
    updated.stdout.fnmatch_lines(["shapetrace: shape snapshots 1 updated"])
    assert snapshot.read_text() == SNAPSHOT.replace("6)", "5)")
    net.runpytest("--shapetrace-snapshot").assert_outcomes(passed=3)


def test_snapshots_hold_nothing_of_the_machine_or_the_run(net, tmp_path_factory):
    write_net_tests(net, out=6)
    net.runpytest("--shapetrace-snapshot").assert_outcomes(passed=3)
    first = (net.path / "__shapes__" / "test_model.txt").read_bytes()
    # The same tests in another directory, with other input sizes: the same bytes.
    other = tmp_path_factory.mktemp("elsewhere")
    (other / "net.py").write_text((net.path / "net.py").read_text())
    (other / "test_model.py").write_text((net.path / "test_model.py").read_text().replace("rand(2, 8)", "rand(5, 8)"))
    net.chdir()
    result = net.runpytest(str(other), "--shapetrace-snapshot", f"--rootdir={other}")
    result.assert_outcomes(passed=3)
    assert (other / "__shapes__" / "test_model.txt").read_bytes() == first
    assert str(net.path) not in first.decode() and "0x" not in first.decode()


def test_update_drops_the_entry_of_a_test_that_no_longer_traces(net):
    write_net_tests(net, out=6)
    net.runpytest("--shapetrace-snapshot").assert_outcomes(passed=3)
    write_tests(net, TESTS.replace("OUT", "6").replace("shapes(Net(), torch.rand(2, 8), dims=\"B F\").assert_output(\"B 1 4\")", "pass"))
    result = net.runpytest("--shapetrace-update")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["shapetrace: shape snapshots 1 removed"])
    assert "## test_net" not in (net.path / "__shapes__" / "test_model.txt").read_text()


def test_without_the_option_nothing_is_written(net):
    write_net_tests(net, out=6)
    net.runpytest().assert_outcomes(passed=3)
    assert not (net.path / "__shapes__").exists()


def test_an_unreadable_snapshot_fails_the_test_and_says_why(net):
    write_net_tests(net, out=6)
    (net.path / "__shapes__").mkdir()
    (net.path / "__shapes__" / "test_model.txt").write_text("linear (B, 4)\n")
    result = net.runpytest("--shapetrace-snapshot", "-k", "test_net")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "shapetrace: */__shapes__/test_model.txt:1: expected '## <test>' before any snapshot row"
    ])  # fmt: skip
