"""What a trace installs to check contracts, and that all of it is gone afterwards."""

from __future__ import annotations

import copy
import io
import sys
import threading

import pytest
import torch
from torch import nn

import shapetrace
from shapetrace import ContractError
from shapetrace._private import jaxtyping_api as jt
from shapetrace._private.module_calls import global_module_hook_counts
from shapetrace.contracts import suspended
from shapetrace.contracts.session import CheckedForward


def instance_forwards(model: nn.Module) -> dict[str, object]:
    return {name: vars(m)["forward"] for name, m in model.named_modules() if "forward" in vars(m)}


def test_annotated_modules_get_a_checked_forward_only_while_the_trace_runs(models):
    model = nn.Sequential(models.Outer(), nn.Linear(4, 4))
    with shapetrace.trace(model):
        installed = instance_forwards(model)
    assert set(installed) == {"0", "0.inner"}  # not the Sequential, not the Linear: no jaxtyping hints
    assert all(isinstance(f, CheckedForward) for f in installed.values())
    assert instance_forwards(model) == {} and jt.memo_depth() == 0


def test_everything_is_removed_when_the_block_raises(models):
    model = models.Outer()
    hooks = global_module_hook_counts()
    with pytest.raises(ContractError), shapetrace.trace(model, on_violation="raise"):
        model(torch.rand(2, 3))  # rank 2, not 3
    assert instance_forwards(model) == {} and jt.memo_depth() == 0
    with pytest.raises(ZeroDivisionError), shapetrace.trace(on_violation="raise"):
        model(torch.rand(2, 3, 4))
        1 / 0
    assert instance_forwards(model) == {} and jt.memo_depth() == 0
    assert global_module_hook_counts() == hooks


def test_a_class_whose_forward_is_replaced_between_traces_is_checked_by_its_new_hints(models, monkeypatch):
    class Plain(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2  # (B, N)

    model = Plain()
    with shapetrace.trace(model):
        assert instance_forwards(model) == {}  # no jaxtyping hints: nothing to check
    monkeypatch.setattr(Plain, "forward", models.Inner.forward)  # a forward with hints, "B N"
    with pytest.raises(ContractError), shapetrace.trace(model, on_violation="raise"):
        assert set(instance_forwards(model)) == {""}
        model(torch.rand(2, 3, 4))  # rank 3, not 2
    monkeypatch.undo()
    with shapetrace.trace(model, on_violation="raise"):
        model(torch.rand(2, 3, 4))  # the plain forward again: nothing checked
        assert instance_forwards(model) == {}


def test_an_instance_forward_of_the_users_own_is_left_alone(models):
    model = models.Pair()
    own = model.forward
    model.forward = lambda x, y: own(x, y)  # e.g. a wrapper some library put there
    users = vars(model)["forward"]
    with shapetrace.trace(model, on_violation="record") as t:
        assert vars(model)["forward"] is users
        model(torch.rand(2, 3, 4), torch.rand(2, 3))
    assert t.contract_calls == [] and vars(model)["forward"] is users


def test_a_jaxtyped_forward_is_checked_once_by_us(models):
    model = models.Strict()
    with shapetrace.trace(model, on_violation="record") as t:
        model(torch.rand(2))  # no jaxtyping TypeCheckError: its wrapper was set aside
    assert [(v.arg, v.reason) for v in t.contracts] == [
        ("x", "rank is 1, expected 2 dims (B N)"),
        ("return", "rank is 1, expected 2 dims (B N)"),
    ]
    with pytest.raises(Exception, match="Type-check error"):
        model(torch.rand(2))  # outside the trace, jaxtyping checks as before


def test_a_module_copied_during_the_trace_runs_its_own_forward(models):
    model = models.Embed()
    ids = torch.randint(0, 10, (2, 3))
    with shapetrace.trace(model, on_violation="record") as t:
        twin = copy.deepcopy(model)
        with torch.no_grad():
            twin.table.weight.zero_()
        assert twin(ids).abs().sum() == 0 and model(ids).abs().sum() > 0
        with pytest.raises(RuntimeError):
            twin(ids.float())  # checked (then the embedding refuses float ids)
    assert [(v.where, v.arg) for v in t.contracts] == [("", "ids")]  # the copy is no module of the model
    assert instance_forwards(twin) == {} and instance_forwards(model) == {}


def test_a_module_saved_during_the_trace_loads_without_the_checked_forward(models):
    model = models.Outer()
    buffer = io.BytesIO()
    with shapetrace.trace(model):
        torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert not isinstance(vars(loaded)["forward"], CheckedForward)
    assert loaded(torch.rand(2, 3, 4)).shape == (2, 3, 4)


def test_without_a_model_modules_are_found_as_they_are_called(models):
    model = models.Outer()
    hooks = global_module_hook_counts()
    with shapetrace.trace(on_violation="record") as t:
        model(torch.rand(2, 3, 4))  # the first call: checked from the hooks
        assert set(instance_forwards(model)) == {"", "inner"}
        model(torch.rand(2, 3, 4))  # then by the installed forward
    assert [(c.function, dict(c.bindings)) for c in t.contract_calls] == [
        ("Inner.forward", {"B": 2, "N": 12}),
        ("Outer.forward", {"B": 2, "N": 3, "D": 4}),
        ("Inner.forward", {"B": 2, "N": 12}),
        ("Outer.forward", {"B": 2, "N": 3, "D": 4}),
    ]
    assert instance_forwards(model) == {} and global_module_hook_counts() == hooks and jt.memo_depth() == 0


def test_the_first_call_is_checked_before_forward_runs(models):
    model = models.Keywords()
    with shapetrace.trace(on_violation="raise") as t, pytest.raises(ContractError, match="rank is 1"):
        model(torch.rand(3))
    assert t.ops[-1].op == "rand"  # forward never ran

    model = models.Keywords()
    with shapetrace.trace(on_violation="raise") as t, pytest.raises(ContractError) as caught:
        model(torch.rand(2, 3), mask=torch.rand(2, 4))  # keyword arguments too
    assert caught.value.violation.reason == "dim N is 4 but N was bound to 3 by x"
    assert caught.value.violation.file == __file__ and t.ops[-1].op == "rand"
    assert jt.memo_depth() == 0


def test_first_call_keyword_arguments_are_checked_before_forward_runs(models):
    model = models.Keywords()
    with shapetrace.trace(on_violation="record") as t:
        model(torch.rand(2, 3), mask=torch.rand(2, 1))  # the first call: wrapped before torch picks forward
    assert [(v.arg, v.reason, v.position) for v in t.contracts] == [("mask", "dim N is 1 but N was bound to 3 by x", 2)]
    assert [op.op for op in t.ops] == ["rand", "rand", "*"]  # found before forward's op
    assert dict(t.contract_calls[0].bindings) == {"B": 2, "N": 3} and jt.memo_depth() == 0


def test_first_call_return_is_checked_too(models):
    model = models.Score()
    with shapetrace.trace(on_violation="record") as t:
        model(torch.rand(4, 1), torch.rand(4))
    assert [(v.where, v.arg) for v in t.contracts] == [("Score", "return")]
    assert t.ops[t.contracts[0].op_index].op == "+"


def test_contracts_list_checks_functions_where_they_are_looked_up(models):
    original = models.pool
    x = torch.rand(2, 3, 4)
    with shapetrace.trace(contracts=[models.pool], on_violation="record") as t:
        assert models.pool is not original and models.pool.__wrapped__ is original
        models.call_pool(x)  # found through the module's globals
        models.call_pool(x[0])
    assert models.pool is original
    assert [(c.function, dict(c.bindings)) for c in t.contract_calls] == [
        ("pool", {"B": 2, "N": 3, "D": 4}),
        ("pool", {}),  # x had rank 2: nothing bound
    ]
    assert [(v.function, v.arg) for v in t.contracts] == [("pool", "x"), ("pool", "return")]


def test_contracts_list_takes_methods_and_static_methods(models):
    helper = models.Helper()
    with shapetrace.trace(contracts=[models.Helper.double, helper.halve], on_violation="record") as t:
        models.Helper.double(torch.rand(2, 3))
        helper.halve(torch.rand(2, 3))
    assert [(v.function, v.arg, v.reason) for v in t.contracts] == [
        ("Helper.halve", "return", "rank is 2, expected 3 dims (B N D)")
    ]
    assert [c.function for c in t.contract_calls] == ["Helper.double", "Helper.halve"]
    assert isinstance(vars(models.Helper)["double"], staticmethod)
    assert vars(models.Helper)["halve"].__qualname__ == "Helper.halve" and not hasattr(
        vars(models.Helper)["halve"], "__wrapped__"
    )


def test_contracts_list_rejects_what_it_cannot_check():
    def local(x: torch.Tensor) -> torch.Tensor:
        return x

    def bare(x):
        return x

    with pytest.raises(ValueError, match="defined inside a function.*@shapetrace.contract"):
        shapetrace.trace(contracts=[local]).__enter__()
    with pytest.raises(TypeError, match="takes Python functions"):
        shapetrace.trace(contracts=[len]).__enter__()
    bare.__qualname__ = "bare"
    sys.modules[__name__].bare = bare
    try:
        with pytest.raises(ValueError, match="bare has no annotations"):
            shapetrace.trace(contracts=[bare]).__enter__()
    finally:
        del sys.modules[__name__].bare
    assert jt.memo_depth() == 0


def test_suspended_turns_checks_off(models):
    model = models.Score()
    with shapetrace.trace(model, on_violation="raise") as t, suspended():
        model(torch.rand(4, 1), torch.rand(4))
        models.center(torch.rand(3))
    assert t.contracts == [] and t.contract_calls == []


def test_calls_from_another_thread_are_not_checked_by_this_trace(models):
    model = models.Score()
    with shapetrace.trace(model, on_violation="record") as t:
        worker = threading.Thread(target=model, args=(torch.rand(4, 1), torch.rand(4)))
        worker.start()
        worker.join()
    assert t.contracts == []


def test_checking_records_no_ops_of_its_own(models):
    model = models.Heads()
    x = torch.rand(2, 3, 4)
    with shapetrace.trace(model, on_violation="record") as checked:
        model(x)
    with shapetrace.trace(model, on_violation="record") as unchecked, suspended():
        model(x)
    assert [op.op for op in checked.ops] == [op.op for op in unchecked.ops] == ["sum", "mean", "[]"]


def test_nested_traces_check_once_in_the_innermost_and_leave_nothing(models):
    model = models.Score()
    args = (torch.rand(4, 1), torch.rand(4))
    with shapetrace.trace(on_violation="record") as outer:  # finds modules by hooks
        with shapetrace.trace(model, on_violation="record") as inner:
            model(*args)
            assert vars(model)["forward"]._session is inner._contract_session
        model(*args)  # the inner trace has ended: the outer one checks now
    assert len(inner.contracts) == 1 and len(outer.contracts) == 1
    assert "forward" not in vars(model)

    with shapetrace.trace(model, on_violation="record") as outer:
        outer_forward = vars(model)["forward"]
        with shapetrace.trace(model, on_violation="record") as inner:
            model(*args)
        assert vars(model)["forward"] is outer_forward
        model(*args)
    assert len(inner.contracts) == 1 and len(outer.contracts) == 1
    assert "forward" not in vars(model)
