"""Where the symbolic pass cannot run, sizes stay concrete: named by value only when exactly one
name fits, and then marked with ``?``; never a wrong name with confidence."""

from __future__ import annotations

import ast

import torch
from torch import nn

import shapetrace
from shapetrace.symbolic import naming


class ValueDependent(nn.Module):
    """Its slice length depends on the data: the replay takes the traced run's value (`.item()`)."""

    def forward(self, x):
        h = x * 2  # (B, N)
        keep = 2 if h.sum().item() > 0 else 1
        return h[:, :keep] + 1  # (B, 2)


class Gated(nn.Module):
    """A branch on the data (`bool(...)`), then a scale read from it: the traced run's values."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 8)

    def forward(self, x, mask):
        h = self.lin(x)  # (B, T, 8)
        out = h if bool((mask == 1).all()) else h.masked_fill(~mask.bool()[..., None], 0.0)
        return out.relu() * (1.0 / mask.sum().item())  # (B, T, 8)


def test_values_read_from_data_are_the_traced_runs():
    model = ValueDependent()
    with shapetrace.trace(model, dims="B N") as t:
        model(torch.rand(8, 5))
    by_op = {op.op: op for op in t.ops}
    assert by_op["*"].outputs[0].expr == "(B, N)"
    assert by_op["[]"].outputs[0].expr == "(B, 2)"  # keep = 2, as in the traced run
    assert t.symbolic.state == "ran"
    gated = Gated()
    for mask in (torch.ones(2, 5, dtype=torch.long), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])):
        with shapetrace.trace(gated, dims={"x": "B T D", "mask": "B T"}) as t:
            gated(torch.rand(2, 5, 16), mask)
        ops = [op.op for op in t.ops]
        assert ("masked_fill" in ops) == (mask != 1).any().item()  # the traced branch, replayed
        assert t.symbolic.state == "ran" and t.ops[-1].outputs[0].expr == "(B, T, 8)"


def test_data_dependent_forward_is_partial_and_marks_guesses(monkeypatch):
    """Without the traced run's value (a replay that reads one where the traced run read none),
    the replay stops at it: the ops after it keep their concrete sizes, named by value."""
    from shapetrace.symbolic import bridge

    monkeypatch.setattr(bridge.ReplayRecorder, "_traced_value", lambda self, func: None)
    model = ValueDependent()
    with shapetrace.trace(model, dims="B N") as t:
        model(torch.rand(8, 5))
    by_op = {op.op: op for op in t.ops}
    assert by_op["*"].outputs[0].expr == "(B, N)"  # before the data-dependent `if`: symbolic
    assert by_op["[]"].outputs[0].expr == "(B?, 2)"  # after it: concrete, B by value only
    assert by_op["+"].outputs[0].shape == (8, 2)
    status = t.symbolic
    assert status.state == "partial" and status.fallback_ops == 2
    with open(__file__) as source:
        line = next(n for n, text in enumerate(source, 1) if "return h[:, :keep] + 1" in text)
    assert status.reason.startswith(f"op 4 ([]) at test_symbolic_fallback.py:{line}: ValueDependent.forward did not run")
    assert "data-dependent" in status.reason


def test_equal_sizes_are_ambiguous_and_stay_numbers(monkeypatch):
    from shapetrace.symbolic import bridge

    monkeypatch.setattr(bridge.ReplayRecorder, "_traced_value", lambda self, func: None)  # by value after the `if`
    model = ValueDependent()
    with shapetrace.trace(model, dims="B N") as t:  # B = N = 4: a 4 could be either
        model(torch.rand(4, 4))
    getitem = next(op for op in t.ops if op.op == "[]")
    assert getitem.outputs[0].expr == "(4, 2)"  # not (B?, 2), not (N?, 2)
    assert next(op for op in t.ops if op.op == "*").outputs[0].expr == "(B, N)"


def test_boolean_mask_size_is_data_dependent():
    class Select(nn.Module):
        def forward(self, x):
            picked = x[x[:, 0] > 0]  # (?, D): as many rows as pass
            return picked.sum(0)  # (D,)

    model = Select()
    x = torch.ones(6, 3)
    with shapetrace.trace(model, dims="N D") as t:
        model(x)
    picked = next(op for op in t.ops if op.outputs and op.outputs[0].shape == (6, 3) and op.op == "[]")
    assert picked.outputs[0].expr == "(N?, D)"  # its row count is data: N by value only
    assert t.ops[-1].outputs[0].expr == "(D,)"


def test_a_broken_pass_never_costs_the_concrete_trace(monkeypatch):
    from shapetrace.symbolic import engine

    def broken(self):
        raise RuntimeError("boom")

    monkeypatch.setattr(engine._Replay, "run", broken)
    model, x = nn.Linear(4, 2), torch.rand(3, 4)
    with shapetrace.trace(model, dims="B D") as t:
        y = model(x)
    assert y.shape == (3, 2)
    assert t.symbolic.state == "failed" and "RuntimeError: boom" in t.symbolic.reason
    assert t.ops[0].outputs[0].shape == (3, 2) and t.ops[0].outputs[0].expr is None
    assert "symbolic shapes failed" in _table_text(t)


def test_unusable_names_are_noted():
    model, x = nn.Linear(4, 2), torch.rand(3, 4)
    with shapetrace.trace(model, dims={"input": "B D", "mask": "B N"}) as t:
        model(x)
    assert t.ops[0].outputs[0].expr == "(B, 2)"
    assert any("'mask'" in note for note in t.symbolic.notes)
    with shapetrace.trace(model, dims="B N D") as t:  # three names for a 2-dim input
        model(x)
    assert any("names 3 dims" in note for note in t.symbolic.notes)


def _table_text(t) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(t.table())
    return console.export_text()


def test_ops_the_replay_does_not_run_keep_their_sizes_and_the_rest_is_symbolic():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x):
            if type(x) is torch.Tensor:  # a fake tensor is a subclass: the replay skips this line
                x = x * 2  # (B, T, 8)
            return (self.lin(x).relu() + 1) * 3  # (B, T, 8)

    model = Branchy()
    with torch.no_grad(), shapetrace.trace(model, dims="B T D") as t:
        model(torch.rand(2, 5, 8))
    assert t.symbolic.state == "partial" and t.symbolic.fallback_ops == 1  # the `*` only the traced run ran
    assert "took another path" in t.symbolic.reason
    assert [op.outputs[0].expr for op in t.ops[1:]] == ["(B?, T?, D?)", "(B, T, D?)", "(B, T, D?)", "(B, T, D?)", "(B, T, D?)"]


def test_an_index_only_the_traced_run_made_is_read_from_its_literals():
    """transformers' padding check (``warn_if_padding_and_no_attention_mask``) returns early for a
    fake tensor: ``input_ids[:, [-1, 0]]`` has no fake twin. Its index is written in literals, so
    the pass applies it to a fake ``input_ids``: ``(B, 2)``, and the pass ran. An index held in a
    variable is not read: that op keeps its sizes."""

    class PaddingCheck(nn.Module):
        def __init__(self, literal: bool) -> None:
            super().__init__()
            self.embed, self.literal = nn.Embedding(100, 8), literal

        def forward(self, ids):
            if type(ids) is torch.Tensor:  # a fake tensor is a subclass: the replay skips the check
                ends = ids[:, [-1, 0]] if self.literal else ids[:, self.ends]  # (B, 2)
                if 0 in ends:
                    print("padded")
            return self.embed(ids)  # (B, T, 8)

        ends = [-1, 0]

    for literal in (True, False):
        model = PaddingCheck(literal)
        with torch.no_grad(), shapetrace.trace(model, dims="B T") as t:
            model(torch.randint(1, 100, (2, 5)))
        check = next(op for op in t.ops if op.op == "[]")
        if literal:
            assert t.symbolic.state == "ran" and check.outputs[0].expr == "(B, 2)"
            assert t.ops[-1].outputs[0].expr == "(B, T, 8)"
        else:
            assert t.symbolic.state == "partial" and "took another path" in t.symbolic.reason


def test_indexes_written_in_literals():
    def index(text):
        return naming.literal_index(ast.parse(f"x[{text}]", mode="eval").body.slice)

    assert index(":, [-1, 0]") == (slice(None), [-1, 0])
    assert index("..., :16, None") == (Ellipsis, slice(None, 16), None)
    assert index("1:-1:2") == slice(1, -1, 2) and index("-3") == -3
    for written in ("i", ":n", "[i, 0]", "x.size(0)", "1 + 1", "[]", "'a'"):
        assert index(written) is naming.NOT_LITERAL, written
