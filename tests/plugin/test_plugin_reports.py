"""A failing test that traced gets its trace and diagnosis in its report; --shapetrace-all and the
marker trace whole tests; --shapetrace-contracts checks every annotated module."""

from __future__ import annotations

import pytest
import torch
from plugin_support import sections, write_tests

FIXTURE_TESTS = """
    import torch
    from net import Net

    def test_passes(shapes):
        shapes(Net(), torch.rand(2, 8)).assert_output("B 1 4")

    def test_wrong_expectation(shapes):
        t = shapes(Net(), torch.rand(2, 8), dims="B F")
        t.assert_output("B 4")

    def test_model_raises(shapes):
        shapes(Net(), torch.rand(2, 7))

    def test_fails_after_tracing(shapes):
        t = shapes(Net(), torch.rand(2, 8))
        assert t.output.sum() > 1e9
"""


def test_a_failing_test_gets_its_traces_and_diagnosis_as_a_section(net):
    write_tests(net, FIXTURE_TESTS)
    result = net.inline_run()
    result.assertoutcome(passed=1, failed=3)
    found = sections(result.getreports("pytest_runtest_logreport"))
    assert found["test_passes"] == []
    (title, text), = found["test_wrong_expectation"]
    assert title == "shapetrace: trace of Net"
    assert [line.split() for line in text.splitlines()[2:4]] == [
        ["0", "12", "h", "=", "self.fc(x)", "linear", "fc", "(B,", "4)"],
        ["1", "13", "return", "h.unsqueeze(1)", "unsqueeze", "Net", "(B,", "1,", "4)"],
    ]
    (title, text), = found["test_model_raises"]
    assert "0   12     h = self.fc(x)   linear   fc       ✗ raised" in text
    words = " ".join(text.split())  # the footer and the panel wrap at the terminal's width
    with pytest.raises(RuntimeError) as untraced:  # torch's wording, which changes between releases
        torch.nn.Linear(8, 4)(torch.rand(2, 7))
    assert f"raised RuntimeError: {untraced.value}" in words and "(2x7 and 8x4)" in words
    assert "✗ matmul-shape" in words  # the diagnosis panel
    assert "`fc` (Linear) has in_features=8" in words
    assert [title for title, _ in found["test_fails_after_tracing"]] == ["shapetrace: trace of Net"]


def test_the_assertion_message_and_the_section_read_in_the_terminal(net):
    write_tests(net, FIXTURE_TESTS)
    result = net.runpytest("-k", "wrong_expectation")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E       shapetrace.testing.ShapeMismatch: shape of output of Net does not match",
        "E         expected B 4",
        "E         actual   (B, 1, 4)  = (2, 1, 4) here",
        "E         rank: expected 2 dims, got 3",
        "E         at net.py:13 in Net",
        "E             return h.unsqueeze(1)",
        "E       dims: B=2, F=8",
        "*- shapetrace: trace of Net -*",
        "*#   line   code *op *module *output shape*",
    ])  # fmt: skip


def test_a_failing_assertion_report_has_no_torch_trace_log_lines(net):
    write_tests(net, FIXTURE_TESTS)
    result = net.runpytest("-k", "wrong_expectation")
    result.assert_outcomes(failed=1)
    assert "torch.__trace" not in result.stdout.str()  # the symbolic pass's internals stay out of the log


def test_shapetrace_all_traces_every_test_and_only_then(net):
    write_tests(net, """
        import torch
        from net import Net

        def test_plain_failure():
            y = Net()(torch.rand(3, 8))
            assert y.shape == (3, 2, 4)

        def test_plain_pass():
            assert Net()(torch.rand(3, 8)).shape == (3, 1, 4)
    """)
    plain = net.inline_run()
    plain.assertoutcome(passed=1, failed=1)
    assert sections(plain.getreports("pytest_runtest_logreport"))["test_plain_failure"] == []

    traced = net.inline_run("--shapetrace-all")
    traced.assertoutcome(passed=1, failed=1)
    found = sections(traced.getreports("pytest_runtest_logreport"))
    assert found["test_plain_pass"] == []
    (title, text), = found["test_plain_failure"]
    assert title == "shapetrace: trace of test test_plain_failure"
    rows = [line.split()[:6] for line in text.splitlines()[2:5]]
    assert rows == [
        ["0", "test_model.py:5", "y", "=", "Net()(torch.rand(3,", "8))"],
        ["1", "net.py:12", "h", "=", "self.fc(x)", "linear"],
        ["2", "net.py:13", "return", "h.unsqueeze(1)", "unsqueeze", "Net"],
    ]
    assert "the block raised AssertionError" in text


def test_the_marker_traces_one_test(net):
    write_tests(net, """
        import pytest, torch
        from net import Net

        @pytest.mark.shapetrace
        def test_marked():
            assert Net()(torch.rand(3, 8)).shape == (3, 2, 4)

        def test_unmarked():
            assert Net()(torch.rand(3, 8)).shape == (3, 2, 4)
    """)
    result = net.inline_run("--strict-markers")
    result.assertoutcome(failed=2)
    found = sections(result.getreports("pytest_runtest_logreport"))
    assert [title for title, _ in found["test_marked"]] == ["shapetrace: trace of test test_marked"]
    assert found["test_unmarked"] == []


def test_shapetrace_contracts_checks_every_annotated_module(net):
    write_tests(net, """
        import torch
        from net import Pair

        def test_wrong_shapes_pass_unchecked():
            Pair()(torch.rand(2, 3), torch.rand(2, 1))  # broadcasts: the annotation says (B, N)

        def test_right_shapes():
            Pair()(torch.rand(2, 3), torch.rand(2, 3))
    """)
    net.inline_run().assertoutcome(passed=2)
    result = net.runpytest("--shapetrace-contracts")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "E *ContractError: Pair.forward in Pair: y does not match its annotation",
        'E *  expected Float[[]Tensor, "B N"[]]',
        "E *  actual   (2, 1) float32 cpu",
        "E *  dim N is 1 but N was bound to 3 by x",
        "*- shapetrace: trace of test test_wrong_shapes_pass_unchecked -*",
    ])  # fmt: skip


def test_a_trace_that_cannot_be_rendered_does_not_hide_the_failure(net, monkeypatch):
    import shapetrace.testing.plugin_session as session

    def broken(recorded, width):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(session, "trace_section", broken)
    write_tests(net, FIXTURE_TESTS)
    result = net.inline_run("-k", "wrong_expectation")
    result.assertoutcome(failed=1)
    (title, text), = sections(result.getreports("pytest_runtest_logreport"))["test_wrong_expectation"]
    assert text == "shapetrace could not render this trace: RuntimeError: renderer broke\n"


def test_a_long_trace_keeps_its_last_rows_up_to_the_failure():
    import torch

    from shapetrace import trace
    from shapetrace.testing.report import trace_section

    x = torch.zeros(3)
    try:
        with trace() as recorded:
            for _ in range(100):
                x = x + 1                                   # (3,)
            x @ torch.zeros(4)
    except RuntimeError:
        pass
    lines = trace_section(recorded, width=120, max_rows=10).splitlines()
    assert lines[2] == "  ... 92 earlier rows not shown (the trace has 102 ops)"
    assert [line.split()[0] for line in lines[3:13]] == [str(i) for i in range(92, 102)]
    assert "✗ raised" in lines[12]
    assert lines[14].startswith("102 ops, 0 module calls")
