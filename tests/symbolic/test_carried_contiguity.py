"""Whether a fake tensor is contiguous, as the carrying rules ask it (shapetrace/symbolic/carried.py,
``_is_contiguous``): torch's answer, read from the sizes and strides as written and at the traced
values, without torch's symbolic walk (each dim a question to the ShapeEnv, some of them guards)
where its questions could fix nothing; torch answers the others."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_carried_spatial import _fresh_run, _make  # a sibling test module (on sys.path)

from shapetrace._private import torch_symbolic as ts
from shapetrace.symbolic import carried as rules
from shapetrace.symbolic.carried import carried


def _strided(m):
    """``(B, 8, H/4, W/4)``: a patchify conv's output, sizes that are floor divisions."""
    return F.conv2d(m(("B", 3, "H", "W")), torch.ones(8, 3, 4, 4), None, 4)


def _factored(m):
    """``(B, (H + 1)*(W + 1), 32)`` whose first stride is written ``(H + 1)*(32*W + 32)``, the
    contiguous one ``32*(H + 1)*(W + 1)``: the same polynomial."""
    x = m(("B", "H", "W", 32))
    rows, columns = x.shape[1] + 1, x.shape[2] + 1
    return torch.empty_strided((x.shape[0], rows * columns, 32), (rows * (32 * columns), 32, 1))


LAYOUTS = {
    "contiguous": lambda m: _strided(m),
    "tokens, transposed (ViT's, MLP-Mixer's)": lambda m: _strided(m).flatten(2).transpose(1, 2),
    "channels last": lambda m: _strided(m).permute(0, 2, 3, 1),
    "torch's layer_norm output, Max(1, H//4) in its strides": lambda m: F.layer_norm(
        _strided(m).permute(0, 2, 3, 1), (8,)),
    "that, permuted back (ConvNeXt's block input)": lambda m: F.layer_norm(
        _strided(m).permute(0, 2, 3, 1), (8,)).permute(0, 3, 1, 2),
    "a slice along a symbolic dim": lambda m: _strided(m)[:, :, 1:],
    "a slice along a concrete dim": lambda m: _strided(m)[:, :4],
    "a dim of size 1": lambda m: _strided(m)[:, :1],
    "strides written as another polynomial, (H + 1)*(32*W + 32) (SegFormer's reshaped tokens)": lambda m: _factored(m),
    "expanded": lambda m: m(("B", 1, "H")).expand(-1, 4, -1),
    "a symbolic dim of size 1 at the traced values": lambda m: F.conv2d(m(("B", 3, "H", "W")), torch.ones(8, 3, 16, 16),
                                                                        None, 16).transpose(2, 3),
    "concrete sizes": lambda m: m((2, 3, 4)).transpose(0, 1),
}  # fmt: skip


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_answer_is_torchs(layout):
    run = _fresh_run()
    with run.running(grad=False):
        t = LAYOUTS[layout](lambda shape: _make(run, shape))
        ours = rules._is_contiguous(t)
        assert ours == t.is_contiguous(), layout


@pytest.mark.parametrize("layout", ["tokens, transposed (ViT's, MLP-Mixer's)",
                                    "that, permuted back (ConvNeXt's block input)"])  # fmt: skip
def test_the_rules_ask_no_guard_where_torchs_question_would(layout):
    """torch's own answer for these layouts adds ``Ne`` guards (``Ne((W//4), 1)``) that fix
    nothing (a twin of the tensor shows it); deciding to carry a ``relu`` and a ``contiguous()``
    of them adds none, and their outputs are torch's. (Where a stride is the contiguous one only
    at the traced values, ``Max(1, H//4)`` for ``H//4``, torch answers: its ``Eq`` could narrow
    a range.)"""
    run = _fresh_run()
    with run.running(grad=False):
        t, twin = (LAYOUTS[layout](lambda shape: _make(run, shape)) for _ in range(2))
        before = [str(g) for g in ts.guard_exprs(run.env)]
        calls = ((F.relu, (t,)), (torch.Tensor.contiguous, (t,)))
        made = [carried(func, args, {}) for func, args in calls]
        assert None not in made
        assert [str(g) for g in ts.guard_exprs(run.env)] == before
        assert not twin.is_contiguous()
        assert [str(g) for g in ts.guard_exprs(run.env)] != before  # torch's question guards
        for (func, args), make in zip(calls, made):
            ours, torchs = make(), func(*args)
            assert ts.size_exprs(ours.shape) == ts.size_exprs(torchs.shape), func
            assert ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride()), func


@pytest.mark.parametrize("layout", ["tokens, transposed (ViT's, MLP-Mixer's)", "channels last",
                                    "strides written as another polynomial, (H + 1)*(32*W + 32) (SegFormer's reshaped tokens)"])  # fmt: skip
def test_read_without_torchs_walk(layout, monkeypatch):
    """Strides as written, at the traced values, or the same polynomial: torch is not asked.
    (A conv's output written with ``Max(1, H//4)`` in its strides is torch's to answer.)"""
    run = _fresh_run()
    with run.running(grad=False):
        t = LAYOUTS[layout](lambda shape: _make(run, shape))

        def asked(*args, **kwargs):
            raise AssertionError("torch's contiguity asked")

        with monkeypatch.context() as patched:
            patched.setattr(torch.Tensor, "is_contiguous", asked)
            ours = rules._is_contiguous(t)
        assert ours == t.is_contiguous()
