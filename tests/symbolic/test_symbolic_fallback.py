"""Where the symbolic pass cannot run, sizes stay concrete: named by value only when exactly one
name fits, and then marked with ``?``; never a wrong name with confidence."""

from __future__ import annotations

import torch
from torch import nn

import shapetrace


class ValueDependent(nn.Module):
    """Its slice length depends on the data: fake tensors cannot follow past the `if`."""

    def forward(self, x):
        h = x * 2  # (B, N)
        keep = 2 if h.sum().item() > 0 else 1
        return h[:, :keep] + 1  # (B, 2)


def test_data_dependent_forward_is_partial_and_marks_guesses():
    model = ValueDependent()
    with shapetrace.trace(model, dims="B N") as t:
        model(torch.rand(8, 5))
    by_op = {op.op: op for op in t.ops}
    assert by_op["*"].outputs[0].expr == "(B, N)"  # before the data-dependent `if`: symbolic
    assert by_op["[]"].outputs[0].expr == "(B?, 2)"  # after it: concrete, B by value only
    assert by_op["+"].outputs[0].shape == (8, 2)
    status = t.symbolic
    assert status.state == "partial" and status.fallback_ops == 2
    assert status.reason.startswith("op 4 ([]) at test_symbolic_fallback.py:18: ValueDependent.forward did not run")
    assert "data-dependent" in status.reason


def test_equal_sizes_are_ambiguous_and_stay_numbers():
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
