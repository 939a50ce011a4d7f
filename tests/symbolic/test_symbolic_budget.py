"""The symbolic pass never blocks: past its budget, the ops not reached keep their concrete sizes,
and the status and the table say so."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

import shapetrace
from shapetrace.cli.main import main
from shapetrace.symbolic.job import Job


@pytest.fixture
def generous_default_budget():
    """The real default budget here (conftest.py raises it for the other tests)."""


class Slow(nn.Module):
    """Hundreds of distinct ops in one forward: cheap to run, slow to replay symbolically (a clamp
    runs in torch's symbolic machinery; arithmetic on same-sized operands would be carried)."""

    def forward(self, x):
        for step in range(300):
            x = x.clamp(max=step + 1.0)  # (B, D)
        return x.sum(-1)  # (B,)


def test_past_the_budget_ops_keep_their_concrete_sizes():
    model = Slow()
    with shapetrace.trace(model, dims="B D", symbolic_budget=0.25) as t:
        model(torch.rand(4, 8))
    status = t.symbolic
    assert status.state == "partial" and status.reason.startswith("the symbolic pass stopped at its budget of 0.25 s")
    assert f"{status.fallback_ops} ops not reached keep their concrete sizes" in status.reason
    assert 0.25 <= status.seconds < 1.0  # one op past the deadline at most (imports are not counted)
    exprs = [op.outputs[0].expr for op in t.ops if op.module is not None]
    reached = exprs.index("(B?, D?)")  # the first op past the budget: concrete, named by value
    assert reached > 0 and set(exprs[:reached]) == {"(B, D)"} and t.ops[-1].outputs[0].expr == "(B?,)"
    assert all(expr in ("(B?, D?)", "(B?,)") for expr in exprs[reached:])


def test_the_default_budget_follows_the_forward():
    job = Job([], [], {}, {}, None, None, forward_seconds=0.1)
    assert job.seconds == 2.0  # at least 2 s
    job.forward_seconds = 3.0
    assert job.seconds == 15.0  # else 5x the forward
    job.budget = 0.5
    assert job.seconds == 0.5


def test_a_generous_budget_lets_the_pass_finish():
    model = Slow()
    with shapetrace.trace(model, dims="B D", symbolic_budget=600) as t:
        model(torch.rand(4, 8))
    assert t.symbolic.state == "ran" and t.ops[-1].outputs[0].expr == "(B,)"


@pytest.mark.parametrize("budget", [0, -1, "2", float("nan"), True])
def test_a_budget_must_be_a_positive_number(budget):
    with pytest.raises(ValueError, match="symbolic_budget must be a positive number"):
        shapetrace.trace(symbolic_budget=budget)


def test_the_cli_takes_a_budget_and_the_footer_says_it_was_reached(tmp_path, capsys):
    script = tmp_path / "slow.py"
    script.write_text(
        "import torch\n"
        "B, D = 4, 8\n"
        "x = torch.rand(B, D)\n"
        "for step in range(200):\n"
        "    x = x.clamp(max=step + 1.0)\n"
    )
    assert main(["--symbolic-budget", "0.2", str(script)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "symbolic shapes partial" in out and "stopped at its budget of 0.2 s" in out
    assert main(["--symbolic-budget", "0", str(script)]) == 2
    assert "--symbolic-budget: symbolic_budget must be a positive number" in capsys.readouterr().err


def test_the_cli_shows_progress_on_stderr_while_a_long_pass_runs():
    from io import StringIO

    from rich.console import Console

    from shapetrace.cli.progress import run_with_progress

    model = Slow()
    with shapetrace.trace(model, dims="B D", symbolic_budget=600) as t:
        model(torch.rand(4, 8))
    stream = StringIO()
    stdout = sys.stdout
    run_with_progress(t, Console(file=stream, force_terminal=True, width=100), show_after=0.0)
    shown = stream.getvalue()
    assert "symbolic shapes" in shown and f"/{len(t)}" in shown and "ops" in shown
    assert t.symbolic.state == "ran"
    assert sys.stdout is stdout  # the bar leaves stdout as it found it: the table printed next is not lost
