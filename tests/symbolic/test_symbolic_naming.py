"""Names from the source (the factory call that made a tensor, read with ast) and from jaxtyping."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import nn

import shapetrace


def make_inputs():
    B, N, T = 2, 3, 5
    shape = (B, N)
    return [
        torch.zeros((B, N)),
        torch.full((B, N), 0.5),
        torch.arange(T),
        torch.ones(B, 2 * N),
        torch.randint(0, 10, (B, T)),
        torch.rand(*shape),
        torch.ones(B, 1).new_zeros(
            N, T
        ),  # a call over several lines
    ]


def test_factory_calls_name_dims_after_their_size_variables():
    with shapetrace.trace() as t:
        make_inputs()
    exprs = [op.outputs[0].expr for op in t.ops]
    # `2 * N` is an expression of named dims; `*shape` does not show the sizes: named by value, B?
    assert exprs == ["(B, N)", "(B, N)", "(T,)", "(B, 2*N)", "(B, T)", "(B?, N?)", "(B, 1)", "(N, T)"]
    assert t.dims == {"B": 2, "N": 3, "T": 5}


class Embedder(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(10, width))  # made in __init__: names nothing

    def forward(self, ids, scale: Float[torch.Tensor, "#B S"]):
        return self.table[ids] * scale[..., None]


def test_jaxtyping_hints_name_dims_and_broadcastable_ones_stay_numbers():
    model = Embedder()
    ids, scale = torch.zeros(4, 6, dtype=torch.long), torch.ones(1, 6)
    with shapetrace.trace(model, dims={"ids": "B S"}) as t:
        model(ids, scale)
    assert t.ops[-1].outputs[0].expr == "(B, S, 8)"
    assert [m.expr for m in t.modules[0].inputs] == ["(B, S)", "(1, S)"]  # #B is 1 here: a broadcast
    assert "width" not in t.dims


Vector = Float[torch.Tensor, " N"]


class Unchecked(nn.Module):
    def forward(self, x: Float[torch.Tensor, "_B N"], pair: tuple[Vector, Vector]):
        return x + pair[0]


def test_jaxtyping_hints_name_dims_as_the_contracts_read_them():
    """One reader of forward's hints (contracts.forward_dims), one naming rule (contracts.dim_names):
    an unchecked `_B` still names B; the tensors inside a tuple argument are named by their place."""
    from shapetrace.contracts import forward_dims
    from shapetrace.symbolic.naming import forward_dim_specs

    model = Unchecked()
    assert forward_dims(model) == {"x": "_B N", "pair[0]": "N", "pair[1]": "N"}
    assert {a: s.names for a, s in forward_dim_specs(model).items()} == {
        "x": ("B", "N"), "pair[0]": ("N",), "pair[1]": ("N",)
    }
    x, pair = torch.rand(2, 3), (torch.rand(3), torch.rand(3))
    with shapetrace.trace(model) as t:
        model(x, pair)
    assert [op.outputs[0].expr for op in t.ops] == ["(B, N)"] and t.dims == {"B": 2, "N": 3}


def test_a_name_with_two_sizes_is_used_once_and_noted():
    def two_batches():
        B = 2
        a = torch.rand(B, 3)
        B = 4
        b = torch.rand(B, 3)
        return a.sum(), b.sum()

    with shapetrace.trace() as t:
        two_batches()
    assert [op.outputs[0].expr for op in t.ops if op.op == "rand"] == ["(B, 3)", "(4, 3)"]
    assert t.dims == {"B": 2} and any("B is 2 but 4" in note for note in t.symbolic.notes)


def test_a_loop_of_calls_is_replayed_once():
    from shapetrace.symbolic import engine

    runs = []
    original = engine._Replay._run_call
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    x = torch.rand(5, 3)
    try:
        engine._Replay._run_call = lambda self, *args: runs.append(1) or original(self, *args)
        with shapetrace.trace(model, dims="B F") as t:
            for _ in range(4):
                model(x)
        assert [op.outputs[0].expr for op in t.ops][-2:] == ["(B, 4)", "(B, 4)"]
    finally:
        engine._Replay._run_call = original
    assert len(runs) == 1 and len(t.modules) == 12
    assert [(s.dim, s.op_index) for s in t.specializations] == [("F", 0)]


def test_script_constants_are_names_bound_to_one_literal_only(tmp_path):
    from shapetrace.symbolic.naming import script_constants

    model = tmp_path / "model.py"
    model.write_text(
        "D = 512\nheads = 8\nP, K = 77, 21\n\n"
        "def f(x, heads=4):\n    B = x.shape[0]\n    for K in range(3):\n        pass\n"
    )
    train = tmp_path / "train.py"
    train.write_text("D = 256\nlr = 1\nsteps = 100\n")
    # heads is also a parameter, K a loop variable; D is 512 in one file and 256 in the other
    assert script_constants([str(model)]) == {"D": 512, "P": 77}
    assert script_constants([str(model), str(train)]) == {"P": 77, "steps": 100}


def test_script_constants_come_from_the_users_files_only(tmp_path):
    import json.decoder

    from shapetrace.symbolic.naming import is_users_file, script_constants

    library = json.decoder.__file__  # binds NUMBER_RE etc.; an installed or standard module is not the user's
    assert not is_users_file(library) and not is_users_file(torch.nn.functional.__file__)
    assert not is_users_file(shapetrace.__file__) and not is_users_file("<stdin>")
    model = tmp_path / "model.py"
    model.write_text("D = 512\n")
    assert is_users_file(str(model))
    assert script_constants([library, torch.nn.functional.__file__, str(model)]) == {"D": 512}


def test_forward_statements_name_argument_dims():
    from shapetrace.symbolic.naming import forward_statement_specs

    class Model(nn.Module):
        def forward(self, x, idx, mask=None):
            B, *_, D = x.shape
            b, t = idx.size()
            N = mask.shape[1]  # noqa: F841 - names the dim
            x = x.flatten(1)
            C = x.shape[1]  # noqa: F841 - after x was rebound: another tensor, names nothing
            return x

    specs = {argument: (spec.names, spec.tail) for argument, spec in forward_statement_specs(Model()).items()}
    assert specs == {"x": (("B",), ("D",)), "idx": (("b", "t"), None), "mask": ((None, "N"), ())}
