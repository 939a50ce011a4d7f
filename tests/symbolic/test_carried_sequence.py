"""Carried ops of transformers, MLP-mixers, recurrent and seq2seq models
(shapetrace/symbolic/carried.py): each output is checked against torch's own fake result (sizes,
strides, storage offset, dtype, device, requires_grad), and each case where torch's run could
tell more runs in torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shapetrace._private import torch_symbolic as ts
from shapetrace.symbolic import bridge
from shapetrace.symbolic.carried import carried
from shapetrace.symbolic.dims import Names, symbol


@pytest.fixture
def fakes():
    """Fake tensors sized by B, T, S (2, 6, 5) in a fake run with grad mode off, as the bench
    and ``torch.no_grad()`` scripts replay: ``make(shape)``, a shape of names and numbers."""
    names = Names()
    for name, value in (("B", 2), ("T", 6), ("S", 5)):
        names.bind(name, value, "test")
    run = bridge.FakeRun(names)

    def make(shape, dtype=torch.float32):
        canonical = tuple(symbol(s) if isinstance(s, str) else s for s in shape)
        concrete = tuple(names.all[s] if isinstance(s, str) else s for s in shape)
        return run.tensor(canonical, concrete, dtype, torch.device("cpu"))

    with run.running(grad=False):
        yield make


def assert_as_torchs(ours, torchs, case=""):
    """The same sizes, strides and storage offset as written, dtype, device and requires_grad."""
    assert ts.is_fake(ours), case
    assert ts.size_exprs(ours.shape) == ts.size_exprs(torchs.shape), case
    assert ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride()), case
    assert ts.size_expr(ours.storage_offset()) == ts.size_expr(torchs.storage_offset()), case
    assert (ours.dtype, ours.device, ours.requires_grad) == (torchs.dtype, torchs.device, torchs.requires_grad), case


def torchs_result(func, args, kwargs):
    """torch's fake result, as the replay gets it: with torch's Python dispatcher where a C++
    kernel rejects symbolic sizes (``baddbmm``'s broadcast of a mask)."""
    try:
        return func(*args, **kwargs)
    except RuntimeError:
        with ts.python_dispatcher():
            return func(*args, **kwargs)


def test_views_without_grad_are_torchs_sizes_on_the_same_storage_without_dispatch(fakes, dispatches):
    """With grad mode off a carried view is made on its input's storage without the fake mode's
    dispatch (0.35-0.6 ms each on symbolic sizes): torch's sizes, strides and offset."""
    x = fakes(("B", "T", 96))
    batch, length, _ = x.shape
    heads = x.view(batch, length, 4, 24)
    cases = [(torch.Tensor.view, (x, batch, length, 4, 24)), (torch.Tensor.transpose, (heads, 1, 2)),
             (torch.Tensor.split, (x, 32, -1)), (torch.Tensor.__getitem__, (x, (slice(None), None, Ellipsis, slice(8, None)))),
             (torch.Tensor.reshape, (heads.transpose(1, 2).transpose(1, 2), batch, length, 96)),
             (torch.Tensor.unsqueeze, (x, 1)), (torch.Tensor.permute, (heads, 0, 2, 3, 1))]  # fmt: skip
    for func, args in cases:
        made = carried(func, args, {})
        assert made is not None, func
        with dispatches() as seen:
            ours = made()
        assert seen.seen == [], func
        torchs = func(*args)
        for mine, theirs in zip(ours if isinstance(ours, tuple) else [ours], torchs if isinstance(torchs, tuple) else [torchs]):
            assert_as_torchs(mine, theirs, func)
            assert mine.untyped_storage()._cdata == x.untyped_storage()._cdata


def test_views_with_grad_mode_on_stay_autograd_views(fakes):
    """With grad mode on, an in-place op on a view reaches its base through autograd: the view
    is torch's own (``_base`` set)."""
    x = fakes(("B", "T", 96))
    with torch.enable_grad():
        made = carried(torch.Tensor.view, (x, x.shape[0], x.shape[1], 4, 24), {})
        ours = made()
    assert ours._base is x


def test_new_tensors_are_torchs_contiguous_outputs(fakes):
    """A carried op's new tensor (a ``linear``, a reduction, a comparison) has torch's sizes and
    contiguous strides, made once per sizes and run."""
    x = fakes(("B", "T", 96))
    weight, bias = torch.zeros(48, 96), torch.zeros(48)
    for func, args in [(F.linear, (x, weight, bias)), (torch.Tensor.mean, (x, -1, True)),
                       (torch.Tensor.__lt__, (x, 0.5)), (F.linear, (x, weight, bias))]:  # fmt: skip
        made = carried(func, args, {})
        assert made is not None, func
        assert_as_torchs(made(), func(*args), func)


def _mha_arguments(query, key, value, heads=4, separate=False, **kwargs):
    """``F.multi_head_attention_forward``'s arguments as ``nn.MultiheadAttention`` passes them."""
    embed = query.shape[-1]
    kdim, vdim = key.shape[-1], value.shape[-1]
    attention = torch.nn.MultiheadAttention(embed, heads, kdim=kdim, vdim=vdim)
    args = (query, key, value, embed, heads, attention.in_proj_weight, attention.in_proj_bias, None, None, False, 0.1,
            attention.out_proj.weight, attention.out_proj.bias)  # fmt: skip
    if separate:
        kwargs |= {"use_separate_proj_weight": True, "q_proj_weight": attention.q_proj_weight,
                   "k_proj_weight": attention.k_proj_weight, "v_proj_weight": attention.v_proj_weight}  # fmt: skip
    return args, {"training": False} | kwargs


def test_multi_head_attention_is_its_output_projection_viewed_back_as_in_torch(fakes):
    """``nn.MultiheadAttention``'s function: ``(L, N, E)``, the weights ``(N, L, S)`` or per head,
    with masks of the sizes torch checks; unbatched without the batch dim; separate projections
    of other key and value widths."""
    x, memory = fakes(("T", "B", 32)), fakes(("S", "B", 32))
    length, batch, source = x.shape[0], x.shape[1], memory.shape[0]
    causal = torch.zeros(length, length)
    padding = fakes(("B", "S"), dtype=torch.bool)
    heads_mask = fakes(("B", "T", "S"), dtype=torch.bool)  # batch*heads rows, as written: B*4
    heads_mask = torch.zeros(batch * 4, length, source, dtype=torch.bool)
    cases = [
        ("self, causal mask, no weights", _mha_arguments(x, x, x, attn_mask=causal, need_weights=False)),
        ("self, causal hint", _mha_arguments(x, x, x, attn_mask=causal, is_causal=True, need_weights=False)),
        ("cross, padding mask, averaged weights", _mha_arguments(x, memory, memory, key_padding_mask=padding)),
        ("cross, weights per head", _mha_arguments(x, memory, memory, average_attn_weights=False)),
        ("cross, 3-d mask", _mha_arguments(x, memory, memory, attn_mask=heads_mask, key_padding_mask=padding)),
        ("unbatched", _mha_arguments(x[:, 0], memory[:, 0], memory[:, 0], key_padding_mask=padding[0])),
        ("separate projections", _mha_arguments(x, fakes(("S", "B", 24)), fakes(("S", "B", 40)), separate=True)),
    ]
    for case, (args, kwargs) in cases:
        made = carried(F.multi_head_attention_forward, args, kwargs)
        assert made is not None, case
        ours, torchs = made(), torchs_result(F.multi_head_attention_forward, args, kwargs)
        assert (ours[1] is None) == (torchs[1] is None), case
        for mine, theirs in zip(ours, torchs):
            if theirs is not None:
                assert_as_torchs(mine, theirs, case)


def test_multi_head_attention_that_torch_would_check_or_lengthen_runs_in_torch(fakes):
    x, memory, other = fakes(("T", "B", 32)), fakes(("S", "B", 32)), fakes(("S", "T", 32))
    length = x.shape[0]
    attention = torch.nn.MultiheadAttention(32, 4, add_bias_kv=True)
    with_bias_kv = (x, x, x, 32, 4, attention.in_proj_weight, attention.in_proj_bias, attention.bias_k,
                    attention.bias_v, False, 0.0, attention.out_proj.weight, attention.out_proj.bias)  # fmt: skip
    plain, _ = _mha_arguments(x, x, x)
    cases = [
        ("bias_k lengthens the source", (with_bias_kv, {})),
        ("zero attention lengthens the source", _mha_arguments(x, x, x, add_zero_attn=True)),
        ("a batch torch compares: B against T", _mha_arguments(x, other, other)),
        ("a mask of other sizes: (T, T) against S", _mha_arguments(x, memory, memory, attn_mask=torch.zeros(length, length))),
        ("an int mask", _mha_arguments(x, x, x, attn_mask=torch.zeros(length, length, dtype=torch.int64))),
        ("is_causal without a mask raises", _mha_arguments(x, x, x, is_causal=True, need_weights=False)),
        ("dropout in training", (plain, {"training": True})),
        ("a symbolic embedding", ((fakes(("T", "B", "S")), *plain[1:]), {"training": False})),
        ("5 heads do not divide 32", ((*plain[:4], 5, *plain[5:]), {"training": False})),
    ]  # fmt: skip
    for case, (args, kwargs) in cases:
        assert carried(F.multi_head_attention_forward, args, kwargs) is None, case


def test_rotate_half_of_transposed_queries_is_laid_out_as_in_torch(fakes):
    """LLaMA's ``rotate_half``: ``torch.cat((-x2, x1), dim=-1)`` of halves of the transposed
    queries. Math on a half (neither dense nor cut from a contiguous tensor) is laid out densely
    in the order of its strides; the cat of such operands is contiguous."""
    x = fakes(("B", "T", 64))
    q = x.view(x.shape[0], x.shape[1], 4, 16).transpose(1, 2)  # (B, 4, T, 16)
    x1, x2 = q[..., :8], q[..., 8:]
    for func in (torch.Tensor.__neg__, torch.neg, torch.exp, F.relu, F.gelu, F.silu, torch.sigmoid, torch.tanh):
        made = carried(func, (x2,), {})
        assert made is not None, func
        assert_as_torchs(made(), func(x2), func)
    negated = torch.neg(x2)
    made = carried(torch.cat, ((negated, x1),), {"dim": -1})
    assert made is not None
    assert_as_torchs(made(), torch.cat((negated, x1), dim=-1))
    assert ts.size_exprs(made().stride()) == ts.size_exprs(torch.empty(q.shape).stride())  # contiguous


def test_math_and_cats_whose_layout_torch_decides_otherwise_run_in_torch(fakes):
    x = fakes(("B", "T", 64))
    q = x.view(x.shape[0], x.shape[1], 4, 16).transpose(1, 2)
    half = q[..., 8:]
    assert carried(F.softmax, (half, -1), {}) is None  # a softmax's output: its own layout
    assert carried(F.relu, (half,), {"inplace": True}) is None
    assert carried(F.dropout, (half, 0.1, False), {}) is None  # returns its input as it is
    assert carried(torch.neg, (fakes(("B", 1, "T"))[:, :, ::2],), {}) is None  # a dim of size 1: strides tie
    channels_last = fakes(("B", "T", "S", 8))
    images, other = channels_last[..., :4].permute(0, 3, 1, 2), channels_last[..., 4:].permute(0, 3, 1, 2)
    assert carried(torch.cat, ((images, other),), {"dim": 1}) is None  # torch keeps channels-last
    assert torch.cat((images, other), dim=1).is_contiguous(memory_format=torch.channels_last)


def test_a_causal_mask_and_its_check_are_what_torch_makes(fakes):
    """``nn.Transformer.generate_square_subsequent_mask``: ``triu`` of a ``(T, T)`` full of
    ``-inf``; ``nn.Transformer``'s check of it reads ``mask.all()``."""
    x = fakes(("T", "T"))
    flags = fakes(("B", "T"), dtype=torch.bool)
    for func, args, kwargs in [(torch.triu, (x,), {"diagonal": 1}), (torch.tril, (x, -1), {}), (torch.Tensor.triu, (flags,), {}),
                               (torch.all, (flags,), {}), (torch.Tensor.any, (x,), {}), (torch.Tensor.all, (x == 0,), {})]:  # fmt: skip
        made = carried(func, args, kwargs)
        assert made is not None, func
        assert_as_torchs(made(), func(*args, **kwargs), func)
    assert carried(torch.triu, (x.t(),), {}) is None  # not contiguous: a layout torch decides
    assert carried(torch.all, (flags, 1), {}) is None  # along a dim: a reduction
    assert carried(torch.all, (fakes(("B", "T"), dtype=torch.uint8),), {}) is None  # uint8 stays uint8


def test_a_residual_added_to_a_transposed_branch_is_laid_out_as_the_first_operand_in_torch(fakes):
    """MLP-Mixer's ``x + token_mlp(y).transpose(1, 2)``, wav2vec2's ``x + pos_conv(x)``: operands
    of one size laid out differently, the first deciding the output's layout, with the strides
    torch writes (``Max(1, N)`` for a size that may be 0 as written)."""
    images = fakes(("B", 16, "T", "S"))
    tokens = images.flatten(2).transpose(1, 2)  # (B, T*S, 16), transposed
    contiguous = torch.nn.functional.linear(tokens, torch.zeros(16, 16))  # torch's strides
    pieces = torch.nn.functional.linear(fakes(("B", "T", 8)), torch.zeros(16, 8))[:, :, None].expand(-1, -1, 3, -1)
    cases = [(torch.add, tokens, contiguous), (torch.Tensor.__add__, contiguous, tokens), (torch.mul, tokens, contiguous),
             (torch.Tensor.__sub__, contiguous.transpose(1, 2), tokens.transpose(1, 2))]  # fmt: skip
    for func, x, y in cases:
        made = carried(func, (x, y), {})
        assert made is not None, func
        assert_as_torchs(made(), func(x, y), func)
    made = carried(torch.add, (tokens, contiguous), {"alpha": 2})
    assert_as_torchs(made(), torch.add(tokens, contiguous, alpha=2))
    assert carried(torch.mul, (tokens, contiguous), {"alpha": 2}) is None  # torch raises
    assert carried(torch.add, (pieces, pieces.contiguous()), {}) is None  # a stride 0
    assert carried(torch.add, (tokens, fakes(("B", "S", 16))), {}) is None  # sizes written differently
