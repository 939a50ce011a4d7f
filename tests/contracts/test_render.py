"""Violations in the table, in JSON, and in the CLI's exit code."""

from __future__ import annotations

import inspect
import json
import textwrap
import warnings

import pytest
import torch
from contract_support import ANNOTATED, render

import shapetrace
from shapetrace.cli.main import main


def test_the_table_shows_the_violation_where_it_happened(models):
    model = models.Score()
    with shapetrace.trace(model, on_violation="record") as t:
        line = inspect.currentframe().f_lineno + 1
        model(torch.rand(4, 1), torch.rand(4))
    text = render(t)
    rows = text.splitlines()
    plus = next(i for i, row in enumerate(rows) if "return logits + bias" in row)
    assert "✗ contract" in rows[plus]  # the op whose output broke the contract
    marker = rows[plus + 1]
    assert marker.split()[0] == "✗1" and " contract " in marker and marker.rstrip().endswith("(B, B)")
    assert "Score.forward return: dim 1 is 4, expected 1" in rows[plus + 1]
    footer = text[text.index("module calls") :]
    assert (
        f'✗1 Score.forward return at test_render.py:{line}: expected Float[Tensor, "B 1"], got (4, 4) float32 cpu '
        "(made by op 2); dim 1 is 4, expected 1 [B=4]" in " ".join(footer.split())
    )


def test_argument_violations_come_before_the_calls_ops(models):
    model = models.Pair()
    with pytest.raises(TypeError), shapetrace.trace(model, on_violation="raise") as t:
        model(torch.rand(2, 3, 4), torch.rand(2, 5))
    text = render(t)
    rows = text.splitlines()
    marker = next(i for i, row in enumerate(rows) if row.strip().startswith("✗1"))
    assert "Pair.forward y: dim N is 5 but N was bound to 3 by x" in rows[marker]
    assert "rand" in rows[marker - 1] and not rows[marker + 1].strip()  # after the inputs, the last row
    error = "✗ the block raised shapetrace.contracts.violations.ContractError: Pair.forward in Pair: y does not match"
    assert text.rstrip().splitlines()[-1].startswith(error)  # its first line: the ✗1 line has the rest
    assert text.count("dim N is 5 but N was bound to 3 by x") == 2  # the ✗1 row and its footer line
    assert "\n  expected " in t.error.message and "bindings" in t.error.message  # the record keeps it all


def test_unresolved_hints_show_in_the_footer(models):
    model = models.TypeCheckingOnly()
    with pytest.warns(shapetrace.UnresolvedHintWarning), shapetrace.trace(model) as t:
        model(torch.rand(2, 3), 2)
    assert (
        "! TypeCheckingOnly.forward: annotation of x (Float[CheckerTensor, 'B C']) is not checked"
        in render(t)
    )


def test_json_lists_violations_and_unchecked_hints(models):
    model = models.Pair()
    with shapetrace.trace(model, on_violation="record") as t, pytest.raises(RuntimeError):
        model(torch.rand(4, 16, 3), torch.rand(4, 15))
    data = json.loads(t.to_json())
    (violation,) = data["contracts"]
    assert violation == {
        "where": "Pair",
        "function": "Pair.forward",
        "arg": "y",
        "expected": 'Float[Tensor, "B N"]',
        "actual": {"type": "Tensor", "shape": [4, 15], "dtype": "float32", "device": "cpu"},
        "reason": "dim N is 15 but N was bound to 16 by x",
        "bindings": {"B": 4, "N": 16, "D": 3},
        "file": __file__,
        "line": violation["line"],
        "position": 2,
        "op_index": 1,
        "module_index": 0,
    }
    assert data["contract_warnings"] == []
    assert data["ops"][1]["op"] == "rand"  # y was made by the second op of the block


def test_json_variadic_bindings_are_lists(models):
    model = models.Specs()
    with shapetrace.trace(model, on_violation="record") as t:
        model(torch.rand(2, 5, 4, 3), torch.rand(4), torch.rand(1), 1.5)
    (violation,) = t.to_dict()["contracts"]
    assert violation["bindings"] == {"C": 4, "*batch": [2, 5]} and violation["actual"]["shape"] is None


SCRIPT = textwrap.dedent(
    """\
    import torch
    from jaxtyping import Float
    from torch import Tensor, nn


    class Score(nn.Module):
        def forward(self, logits: Float[Tensor, "B 1"], bias: Float[Tensor, " B"]) -> Float[Tensor, "B 1"]:
            return logits + bias  # (B, B)


    print(Score()(torch.rand(4, 1), torch.rand(4)).shape)
    """
)


def test_cli_exits_1_when_a_contract_is_violated(tmp_path, capsys):
    script = tmp_path / "score.py"
    script.write_text(SCRIPT)
    out = tmp_path / "trace.json"
    with pytest.warns(shapetrace.ContractWarning, match="return does not match its annotation"):
        assert main(["--json", str(out), str(script)]) == 1
    captured = capsys.readouterr()
    assert "torch.Size([4, 4])" in captured.out  # the script ran to its end
    assert "Score.forward return: dim 1 is 4, expected 1" in captured.out
    assert json.loads(out.read_text())["contracts"][0]["arg"] == "return"


def test_cli_on_violation_raise_stops_the_script_and_record_only_records(tmp_path, capsys):
    script = tmp_path / "score.py"
    script.write_text(SCRIPT)
    with warnings.catch_warnings():
        warnings.simplefilter("error", shapetrace.ContractWarning)  # neither mode warns
        assert main(["--on-violation", "raise", str(script)]) == 1
        raised = capsys.readouterr()
        assert main(["--on-violation", "record", str(script)]) == 1
        recorded = capsys.readouterr()
    assert "torch.Size" not in raised.out  # stopped at the violation, before the print
    assert "ContractError: Score.forward in Score: return does not match its annotation" in raised.err
    assert "torch.Size([4, 4])" in recorded.out and recorded.err == ""
    for out in (raised.out, recorded.out):
        assert "Score.forward return: dim 1 is 4, expected 1" in out
    with pytest.raises(SystemExit):
        main(["--on-violation", "ignore", str(script)])
    assert "--on-violation: invalid choice: 'ignore'" in capsys.readouterr().err


def test_cli_exits_0_on_an_annotated_example_that_keeps_its_contracts(capsys):
    assert main([str(ANNOTATED / "mlp.py")]) == 0
    assert "contract" not in capsys.readouterr().out
