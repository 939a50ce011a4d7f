"""Dim specs: what dims=, --dims and trace_shapes accept, and the errors for what they do not."""

from __future__ import annotations

import pytest
import torch

import shapetrace
from shapetrace.symbolic.spec import DimsError, dims_option, parse_cli_dims, parse_spec


def test_specs_in_the_forms_people_write():
    assert parse_spec("B C H W").for_rank(4) == ["B", "C", "H", "W"]
    assert parse_spec("(B, C, H, W)").for_rank(4) == ["B", "C", "H", "W"]
    assert parse_spec("B _ 3 W").for_rank(4) == ["B", None, None, "W"]
    assert parse_spec("B ... D").for_rank(4) == ["B", None, None, "D"]
    assert parse_spec("B C H W").for_rank(3) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [("B C H*W", r"'H\*W' is not a dim name"), ("B B", "names B twice"), ("", "names no dim"), ("B ... ...", "more than one")],
)
def test_bad_specs_say_why(spec, message):
    with pytest.raises(DimsError, match=message):
        parse_spec(spec)


def test_trace_rejects_bad_dims_before_the_block_runs():
    ran = []
    with pytest.raises(DimsError, match="is not a dim name"), shapetrace.trace(dims="B H*W"):
        ran.append(1)
    with pytest.raises(DimsError, match="non-negative int"):
        shapetrace.trace(D="512")
    with pytest.raises(DimsError, match="dims keys are forward argument names"):
        dims_option({"0x": "B N"}, {})
    assert not ran
    assert issubclass(DimsError, ValueError)


def test_cli_dims_mix_a_spec_arguments_and_sizes():
    option = parse_cli_dims(["B C H W", "mask='B N'", "D=512;P=77"])
    assert option.spec.names == ("B", "C", "H", "W")
    assert option.by_argument["mask"].names == ("B", "N")
    assert option.sizes == {"D": 512, "P": 77}
    with pytest.raises(DimsError, match="one unnamed spec"):
        parse_cli_dims(["B C", "H W"])


def test_trace_shapes_needs_a_size_for_every_name():
    model = torch.nn.Linear(4, 2)
    with pytest.raises(DimsError, match="names N: give each a size"):
        shapetrace.trace_shapes(model, "B N 4", B=2)
    with pytest.raises(DimsError, match="every dim"):
        shapetrace.trace_shapes(model, "B ... 4", B=2)
