"""Annotations: string ones resolved, unresolvable ones reported, non-array ones checked with
typeguard, containers walked; and the dims specs the symbolic pass reads."""

from __future__ import annotations

import warnings
from typing import Literal

import pytest
import torch
from jaxtyping import Float
from torch import Tensor, nn

import shapetrace
from shapetrace import UnresolvedHint, UnresolvedHintWarning
from shapetrace.contracts import dim_names, forward_dims


def test_string_annotations_are_resolved(models):
    # contract_models.py uses `from __future__ import annotations`: every hint there is a string
    assert isinstance(models.Pair.forward.__annotations__["x"], str)
    model = models.Pair()
    with shapetrace.trace(model, on_violation="record") as t:
        model(torch.rand(2, 3, 4), torch.rand(2, 3))
    assert t.contract_warnings == [] and dict(t.contract_calls[0].bindings) == {"B": 2, "N": 3, "D": 4}


def test_a_hint_that_cannot_be_resolved_is_a_warning_and_a_record(models):
    model = models.TypeCheckingOnly()
    with pytest.warns(UnresolvedHintWarning) as caught, shapetrace.trace(model, on_violation="record") as t:
        model(torch.rand(2, 3), 2.5)  # x and the return cannot be checked; n still is
    assert [(h.function, h.arg, h.hint) for h in t.contract_warnings] == [
        ("TypeCheckingOnly.forward", "x", "Float[CheckerTensor, 'B C']"),  # the text Python kept
        ("TypeCheckingOnly.forward", "return", "Float[CheckerTensor, 'B C']"),
    ]
    hint = t.contract_warnings[0]
    assert (
        isinstance(hint, UnresolvedHint) and hint.reason == "NameError: name 'CheckerTensor' is not defined"
    )
    assert (
        hint.file == models.__file__ and hint.line == models.TypeCheckingOnly.forward.__code__.co_firstlineno
    )
    assert "annotation of x (Float[CheckerTensor, 'B C']) is not checked" in str(caught[0].message)
    assert [(v.arg, v.reason) for v in t.contracts] == [("n", "expected int, got float")]


def test_typeguard_checks_the_non_array_parts(models):
    def mode(x: Float[Tensor, "B N"], how: Literal["sum", "mean"], weights: dict[str, float]) -> float:
        return float(x.sum())

    with shapetrace.trace(on_violation="record", contracts=[]) as t:
        checked = shapetrace.contract(mode)
        checked(torch.rand(2, 3), "sum", {"a": 1.0})
        checked(torch.rand(2, 3), "max", {"a": "heavy"})
    assert [v.arg for v in t.contracts] == ["how", "weights"]
    assert t.contracts[0].expected == "Literal['sum', 'mean']" and "sum" in t.contracts[0].reason
    assert t.contracts[1].expected == "dict[str, float]" and t.contracts[1].actual is None
    assert t.contracts[1].actual_type == "dict"


def test_named_tuples_and_typed_dicts_are_walked(models):
    model = models.Classifier()
    batch = {"image": torch.rand(2, 3, 4, 4), "label": torch.tensor([1, 0])}
    with shapetrace.trace(model, on_violation="record") as t:
        model(batch)
        model({"image": torch.rand(2, 3, 4, 4), "label": torch.tensor([1, 0, 1])})
        model({"image": torch.rand(2, 3, 4, 4)})
    assert [(v.arg, v.reason) for v in t.contracts] == [
        ("batch['label']", "dim B is 3 but B was bound to 2 by batch['image']"),
        ("batch", "missing keys: 'label'"),
    ]
    assert dict(t.contract_calls[0].bindings) == {"B": 2, "C": 3, "H": 4, "W": 4, "K": 5, "D": 3}


def test_optional_arguments_and_unions(models):
    model = models.Keywords()
    with shapetrace.trace(model, on_violation="record") as t:
        model(torch.rand(2, 3))
        model(torch.rand(2, 3), mask=torch.rand(2, 3))
    assert t.contracts == [] and len(t.contract_calls) == 2

    @shapetrace.contract
    def either(x: Float[Tensor, "B N"] | Float[Tensor, " N"]) -> Float[Tensor, " N"]:
        return x.reshape(-1)[:3]

    either(torch.rand(3))
    with pytest.raises(shapetrace.ContractError, match="matches none of the alternatives"):
        either(torch.rand(1, 2, 3))


def test_forward_dims_gives_each_arguments_spec(models):
    assert forward_dims(models.Pair()) == {"x": "B N D", "y": "B N"}
    assert forward_dims(models.Specs) == {"x": "*batch C 3", "scale": "#C", "extra": "..."}
    assert forward_dims(models.Classifier()) == {"batch['image']": "B C H W", "batch['label']": "B"}
    assert forward_dims(models.Keywords()) == {"x": "B N", "mask": "B N"}
    assert forward_dims(nn.Linear(2, 2)) == {}


def test_forward_dims_reads_contract_decorated_forwards():
    class Decorated(nn.Module):
        @shapetrace.contract
        def forward(self, image: Float[Tensor, "B C H W"]) -> Float[Tensor, "B C"]:
            return image.mean((2, 3))

    assert forward_dims(Decorated()) == {"image": "B C H W"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = Decorated()
        with shapetrace.trace(model, on_violation="raise") as t:
            model(torch.rand(1, 2, 3, 3))
    assert [c.function for c in t.contract_calls] == [
        "test_forward_dims_reads_contract_decorated_forwards.<locals>.Decorated.forward"
    ]


def test_dim_names_position_by_position():
    assert dim_names("B C H W", 4) == ("B", "C", "H", "W")
    assert dim_names("#B N=16 _ 3 H*W", 5) == ("B", "N", None, None, None)
    assert dim_names("*batch C", 3) == (None, None, "C")
    assert dim_names("B ... D", 2) == ("B", "D")
    with pytest.raises(ValueError, match="3 dims does not match the spec 'B C'"):
        dim_names("B C", 3)
