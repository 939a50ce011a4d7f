"""How the diagnosis reaches the user: the exception's note (PEP 678), Trace.print, JSON, the CLI."""

from __future__ import annotations

import json
import textwrap
import traceback

import planted
import pytest
import torch
from planted import line_of
from rich.console import Console

from shapetrace import trace
from shapetrace.cli.main import main


def test_the_exception_keeps_its_type_and_message_and_gains_a_note(run_failing, plain_error):
    model, x = planted.FashionNet(flatten_with_reshape=False), torch.rand(2, 1, 32, 32)
    _, error, d = run_failing(model, x)
    plain = plain_error(model, x)
    assert type(error) is type(plain) and str(error) == str(plain) and error.args == plain.args
    (note,) = error.__notes__
    with pytest.raises(type(plain)), trace(model, symbolic=False) as concrete:
        model(x)
    assert note == concrete.diagnostics[0].note()  # the note is made from the concrete records
    assert note.startswith(f"shapetrace: matmul-shape: `linear` in fc1 (Linear) at {d.location}\n")
    flat = " ".join(note.split())  # the note wraps at 100 columns
    assert "`fc1` (Linear) has in_features=192" in flat and "Fix (checked): `nn.Linear(in_features=300" in flat
    printed = "".join(traceback.format_exception(error))
    assert printed.index(str(error)) < printed.index("shapetrace: matmul-shape")  # a plain traceback shows it


def test_nested_traces_note_once():
    model = planted.TwoConvs()
    with pytest.raises(RuntimeError) as info, trace(), trace(model):
        model(torch.rand(2, 3, 8, 8))
    assert [n.startswith("shapetrace: conv-channels") for n in info.value.__notes__] == [True]


def test_an_error_no_op_raised_gets_no_note():
    class Checked(torch.nn.Module):
        def forward(self, x):
            assert x.shape[1] == 3, "expected 3 channels"
            return x

    model = Checked()
    with pytest.raises(AssertionError) as info, trace(model) as t:
        model(torch.rand(2, 4))
    assert not hasattr(info.value, "__notes__") and t.diagnostics == []


def test_records_hold_no_tensors(run_failing):
    t, _, _ = run_failing(planted.FashionNet(), torch.rand(2, 1, 32, 32))
    call = t.evidence.call
    assert call.args[1:] == (-1, 192) and call.contiguous == (True,)

    def walk(value):
        assert not isinstance(value, torch.Tensor)
        if isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(call.args), walk(call.kwargs)


def test_json_lists_diagnostics_with_the_failing_op_index(run_failing):
    t, _, d = run_failing(planted.PatchEmbedNoTranspose(), torch.rand(2, 3, 32, 32))
    data = json.loads(t.to_json())
    (entry,) = data["diagnostics"]
    assert {k: entry[k] for k in ("kind", "severity", "file", "line", "op_index")} == {
        "kind": "cat-shape", "severity": "error", "file": planted.__file__, "line": line_of("cat"),
        "op_index": data["error"]["op_index"],
    }  # fmt: skip
    assert entry["message"] == d.message and entry["fix"] == d.fix and entry["details"] == list(d.details)
    assert [(o["role"], o["shape"], o["device"]) for o in entry["operands"]] == [
        ("self.cls_token.expand(B, -1, -1)", [2, 1, 64], "cpu"), ("x", [2, 64, 16], "cpu"),
    ]  # fmt: skip
    assert data["ops"][entry["op_index"]]["failed"] is True


def test_json_lists_lints_of_a_clean_run():
    model = planted.Chatty()
    with trace(model) as t:
        model(torch.rand(2, 8))
    kinds = [(d["kind"], d["severity"], d["line"]) for d in t.to_dict()["diagnostics"]]
    assert kinds[0] == ("host-sync", "warning", line_of("item")) and len(kinds) == 4


def test_print_shows_the_panel_after_the_table(run_failing):
    t, _, _ = run_failing(planted.AttentionNoTranspose(), torch.rand(2, 10, 32))
    console = Console(width=160, record=True)
    t.print(console)
    out = console.export_text()
    assert out.index("✗ op") < out.index("✗ matmul-shape") < out.index("Fix (checked): `k.transpose(-2, -1)`")
    assert "attn = q @ k" in out.split("✗ matmul-shape")[1]


SCRIPT = """\
import torch
import torch.nn as nn


class Attention(nn.Module):
    def forward(self, att):
        N = att.shape[-1]
        mask = torch.ones(N, N).tril()                    # (N, N)
        return att.masked_fill(mask == 0, float("-inf"))  # (B, N, N)


att = torch.rand(2, 4, 4, device=DEVICE)                  # (B, N, N)
Attention()(att)
"""


@pytest.mark.parametrize(("device", "exit_code"), [("cpu", 0), ("meta", 1)])
def test_cli_prints_diagnostics_after_the_table(tmp_path, capsys, monkeypatch, device, exit_code):
    monkeypatch.setenv("COLUMNS", "160")
    script = tmp_path / "attention.py"
    script.write_text(textwrap.dedent(SCRIPT).replace("DEVICE", repr(device)))
    output = tmp_path / "trace.json"
    assert main(["--json", str(output), str(script)]) == exit_code
    out, err = capsys.readouterr()
    table_end = out.index("module calls in attention.py")
    if device == "cpu":  # a clean run: the lint
        assert (
            table_end
            < out.index("⚠ 1 device lint")
            < out.index("attention.py:8")
            < out.index("factory-without-device")
        )
    else:  # the failure: its traceback, then the panel
        assert (
            table_end
            < out.index("✗ device-mismatch")
            < out.index("Fix (checked): `torch.ones(N, N, device=att.device)`")
        )
        assert err.rstrip().endswith("RuntimeError: Tensor on device meta is not on the expected device cpu!")
        assert "shapetrace:" not in err  # the script's traceback as Python prints it; the panel explains
    diagnostics = json.loads(output.read_text())["diagnostics"]
    assert [d["line"] for d in diagnostics] == [8 if device == "cpu" else 9]


def test_json_carries_whether_the_fix_was_checked_and_its_edits(run_failing):
    t, _, d = run_failing(planted.TwoConvs(), torch.rand(2, 3, 8, 8))
    (entry,) = t.to_dict()["diagnostics"]
    assert entry["fix_checked"] is True and d.fix_checked
    (edit,) = entry["edits"]
    assert (edit["file"], edit["text"]) == (planted.__file__, "6")  # conv2's in_channels, where it is built
    assert edit["line"] == edit["end_line"] and edit["end_col"] > edit["col"]
