"""1-d pools, convolutions and ``linear`` on symbolic channels, tensors laid out with the strides
torch writes (``Max(1, H//4)``), and ``flatten`` of a channels-last image, answered in the replay
(shapetrace/symbolic/carried.py, ``_pool_1d``, ``_conv_on_symbolic_channels``,
``_linear_on_symbolic_features``, ``_torchs_contiguous``, ``_flattened``): each output is
torch's fake output (sizes, strides, offset, dtype, device, requires_grad) and the ShapeEnv ends
with torch's replacements, no guard torch does not add, and value ranges no narrower than torch's;
where torch's run could tell more, the op runs in torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_carried_spatial import _assumes_no_more_than_torch, _both, _fresh_run, _make, _weight
from test_symbolic_carried import with_and_without_carrying  # sibling test modules (on sys.path)
from test_symbolic_reuse import everything, exact
from torch import nn

import shapetrace
from shapetrace._private import torch_symbolic as ts
from shapetrace.symbolic.carried import carried


def _audio(m):
    """``(B, 8, L//16 - 4)``: a strided ``conv1d``'s output, a length that is an expression."""
    return F.conv1d(m(("B", 1, "L")), _weight(8, 1, 80), None, 16)


def _torchs_layout(m, channels=8):
    """``(B, H/4, W/4, C)`` as torch's ``layer_norm`` writes it after a ConvNeXt stem and its
    permute: strides ``8*Max(1, H//4)*Max(1, W//4)``, ...  (torch cannot prove ``H//4 >= 1``)."""
    stem = F.conv2d(m(("B", 3, "H", "W")), _weight(channels, 3, 4, 4), None, 4)
    return F.layer_norm(stem.permute(0, 2, 3, 1), (channels,))


def _torchs_channels_last(m, channels=8):
    """ConvNeXt's block input: that tensor permuted back to ``(B, C, H/4, W/4)``."""
    return _torchs_layout(m, channels).permute(0, 3, 1, 2)


def _attended(m):
    """An image batch after a diffusers attention block: ``(B, H*W, C)`` reshaped back to ``(B,
    C, H, W)``, channels-last, strides written ``H*(C*W)``."""
    tokens = m(("B", "H", "W", 8)).flatten(1, 2) * 2  # (B, H*W, 8)
    batch, height, width = (tokens.shape[0], m(("H",)).shape[0], m(("W",)).shape[0])
    return tokens.transpose(1, 2).reshape(batch, 8, height, width)


def _tokens(m):
    """``(B, N, 8)``, N = H/4*W/4 (35 here): a patchify conv's output flattened and transposed."""
    return F.conv2d(m(("B", 3, "H", "W")), _weight(8, 3, 4, 4), None, 4).flatten(2).transpose(1, 2)


def _mixer_tokens(m):
    """MLP-Mixer's token-mixing input: ``(B, 8, N)``, N = H/4*W/4 (35 here) patches, the transpose of
    torch's layer-normed ``(B, N, 8)`` (strides ``8*Max(1, N)``, 1, 8)."""
    patches = F.conv2d(m(("B", 3, "H", "W")), _weight(8, 3, 4, 4), None, 4).flatten(2).transpose(1, 2)
    return F.layer_norm(patches, (8,)).transpose(1, 2)


CASES = {
    "max_pool1d of a length that is an expression (torch fixes it)": lambda m: (F.max_pool1d, (_audio(m), 4), {}),
    "max_pool1d of a length that is a dim (torch replaces it)": lambda m: (F.max_pool1d, (m(("B", 8, "L")), 4), {}),
    "max_pool1d, every argument": lambda m: (F.max_pool1d, (_audio(m), 3, 2, 1, 2, True), {}),
    "max_pool1d, stride None, ints in lists": lambda m: (F.max_pool1d, (_audio(m), [3]),
                                                         {"stride": None, "padding": [1]}),
    "avg_pool1d": lambda m: (F.avg_pool1d, (_audio(m), 4), {}),
    "avg_pool1d by the whole length (a SymInt kernel)": lambda m: (F.avg_pool1d, (_audio(m), _audio(m).shape[-1]), {}),
    "avg_pool1d, padded, ceil mode, no pad counted": lambda m: (F.avg_pool1d, (_audio(m), 3, 2, 1, True, False), {}),
    "conv2d on symbolic channels (an image model's first)": lambda m: (F.conv2d, (m(("B", "C", "H", "W")),
                                                                                 _weight(8, 3, 3, 3), _weight(8)),
                                                                       {"padding": 1}),
    "conv2d on symbolic channels, strided": lambda m: (F.conv2d, (m(("B", "C", "H", "W")), _weight(8, 3, 7, 7)),
                                                       {"stride": 2, "padding": 3}),
    "conv2d on symbolic channels, a patchify": lambda m: (F.conv2d, (m(("B", "C", "H", "W")), _weight(8, 3, 4, 4),
                                                                     None, 4), {}),
    "conv1d on symbolic channels, valid": lambda m: (F.conv1d, (m(("B", "C", "L")), _weight(4, 3, 5)),
                                                     {"padding": "valid"}),
    "conv2d on symbolic channels, grouped": lambda m: (F.conv2d, (m(("B", "C", "H", "W")), _weight(6, 1, 3, 3)),
                                                       {"groups": 3}),
    "linear on symbolic features (cross-attention's states)": lambda m: (F.linear, (m(("B", "L", "C")),
                                                                                   _weight(4, 3)), {}),
    "linear on symbolic features, a bias": lambda m: (F.linear, (m(("B", "C")), _weight(4, 3), _weight(4)), {}),
    "linear on symbolic features of transposed tokens (MLP-Mixer's token mixing)": lambda m: (
        F.linear, (_mixer_tokens(m), _weight(16, 35), _weight(16)), {}),
    "linear on transposed tokens, no bias": lambda m: (F.linear, (_mixer_tokens(m), _weight(16, 35)), {}),
    "linear on a transposed symbolic dim": lambda m: (F.linear, (m(("B", "C", 8)).transpose(1, 2), _weight(4, 3),
                                                                 _weight(4)), {}),
    "linear on a permuted 4-d input": lambda m: (F.linear, (m(("B", "C", 5, 8)).permute(0, 3, 2, 1), _weight(4, 3)),
                                                 {}),
    "MLP-Mixer's residual onto its token mixing ((B, N, 8) + (B, 35, 8): Eq(N, 35))": lambda m: (
        torch.Tensor.__add__, (_tokens(m), m(("B", 8, 35)).transpose(1, 2)), {}),
    "patches plus their positions, a buffer (DiT's (B, N, 8) + (1, 35, 8))": lambda m: (
        torch.Tensor.__add__, (_tokens(m), _weight(1, 35, 8)), {}),
    "a transposed length times a positional table (Eq(L, 1000): a replacement)": lambda m: (
        torch.mul, (m(("B", 8, "L")).transpose(1, 2), m((1, 1000, 8))), {}),
    "a residual onto a transposed branch, alpha": lambda m: (torch.sub, (_tokens(m), m(("B", 8, 35)).transpose(1, 2)),
                                                             {"alpha": 2}),
    "a layer scale times torch's contiguous layout": lambda m: (torch.mul, (_weight(8), _torchs_layout(m)), {}),
    "a residual onto torch's contiguous layout": lambda m: (torch.add, (_torchs_layout(m), _torchs_layout(m)), {}),
    "depthwise conv of torch's channels-last layout": lambda m: (F.conv2d, (_torchs_channels_last(m),
                                                                            _weight(8, 1, 7, 7), _weight(8)),
                                                                 {"padding": 3, "groups": 8}),
    "downsampling conv of torch's channels-last layout": lambda m: (F.conv2d, (_torchs_channels_last(m),
                                                                               _weight(16, 8, 2, 2)), {"stride": 2}),
    "flatten of a permuted image (SegFormer's)": lambda m: (torch.flatten, (m(("B", "H", "W", 8)).permute(0, 3, 1, 2),
                                                                            2), {}),
    "attention with one head (SegFormer's first stage, viewed from (B, N, 1, d))": lambda m: (
        F.scaled_dot_product_attention, (m(("B", "L", 1, 8)).transpose(1, 2), m(("B", "H", 1, 8)).transpose(1, 2),
                                         m(("B", "H", 1, 8)).transpose(1, 2)), {"scale": 0.5}),
    "a projection written out, (B, T, 16) @ a weight (Falcon's x @ W.T)": lambda m: (
        torch.matmul, (m(("B", "L", 16)), _weight(8, 16).T), {}),
    "transposed tokens @ a matrix": lambda m: (torch.Tensor.__matmul__, (m(("B", 16, "L")).transpose(1, 2),
                                                                        _weight(16, 8)), {}),
    "heads @ a matrix (4-d)": lambda m: (torch.matmul, (m(("B", 2, "L", 16)), _weight(16, 8)), {}),
    "a matrix @ a fake matrix": lambda m: (torch.matmul, (m(("L", 16)), m((16, 8))), {}),
    "cat of channels-last skips (a diffusers U-Net's)": lambda m: (torch.cat, ([_attended(m), _attended(m)], 1), {}),
    "cat of channels-last images as torch writes them": lambda m: (torch.cat, (
        [_torchs_channels_last(m), _torchs_channels_last(m, channels=4)],), {"dim": 1}),
}  # fmt: skip


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "autograd"])
@pytest.mark.parametrize("case", CASES)
def test_outputs_and_guards_are_torchs(case, grad):
    build = CASES[case]
    with_grad = (lambda m: build(lambda shape: m(shape, requires_grad=True))) if grad else build
    torchs, ours = _both(with_grad, grad=grad)
    assert ours is not None, case
    assert ours[0] == torchs[0], case  # sizes, strides, offset, dtype, device, requires_grad, leaf
    if grad:  # a new output that needs grad is a clone (not a leaf): its layout questions fix no dim
        assert ours[1][1] == torchs[1][1], case  # replacements
    else:
        _assumes_no_more_than_torch(ours[1], torchs[1], case)


def test_the_guards_that_fix_a_size_are_torchs():
    """What the cases above compare, on four of them: the guard torch's ``max_pool1d`` adds on a
    length that is an expression, its replacement of a length that is one symbol, and the
    replacements torch's checks of symbolic channels make."""
    torchs, ours = _both(CASES["max_pool1d of a length that is an expression (torch fixes it)"])
    fixed = "Eq(((s38//16)) - 4, 58)"  # L//16 - 4 is 58: L may be any of 992..1007, no replacement
    assert fixed in ours[1][0] and fixed in torchs[1][0] and ours[1][1] == torchs[1][1] == {}
    assert ours[0][0] == torchs[0][0] == ("s44", "8", "((s38//64)) - 1")
    torchs, ours = _both(CASES["max_pool1d of a length that is a dim (torch replaces it)"])
    assert ours[1][1] == torchs[1][1] == {"s38": "1000"} and ours[0][0] == torchs[0][0] == ("s44", "8", "250")
    torchs, ours = _both(CASES["conv2d on symbolic channels (an image model's first)"])
    assert ours[1][1] == torchs[1][1] == {"s69": "3"} and ours[0][0] == torchs[0][0] == ("s44", "8", "s1", "s36")
    torchs, ours = _both(CASES["linear on symbolic features (cross-attention's states)"])
    assert ours[1][1] == torchs[1][1] == {"s69": "3"} and ours[0][0] == torchs[0][0] == ("s44", "s38", "4")


def test_the_layouts_are_torchs_own_strides():
    """The inputs of the layout cases are what they claim: written with ``Max(1, ...)``."""
    run = _fresh_run()
    with run.running(grad=False):
        image = _torchs_channels_last(lambda *a, **k: _make(run, *a, **k))
        strides = [str(s) for s in ts.size_exprs(image.stride())]
    assert strides == ["8*Max(1, (s1//4))*Max(1, (s36//4))", "1", "8*Max(1, (s36//4))", "8"]


NOT_CARRIED = {
    "max_pool1d with indices": lambda m: (F.max_pool1d, (_audio(m), 4), {"return_indices": True}),
    "max_pool1d of a transposed input": lambda m: (F.max_pool1d, (m(("B", "L", 8)).transpose(1, 2), 4), {}),
    "max_pool1d of an unbatched input": lambda m: (F.max_pool1d, (m((8, "L")), 4), {}),
    "max_pool1d by two ints": lambda m: (F.max_pool1d, (_audio(m), (2, 2)), {}),
    "avg_pool1d of integers": lambda m: (F.avg_pool1d, (m(("B", 8, "L"), dtype=torch.int64), 2), {}),
    "conv2d on symbolic channels that are not the weight's (torch raises)": lambda m: (
        F.conv2d, (m(("B", "C", "H", "W")), _weight(4, 8, 3, 3)), {}),
    "conv2d on symbolic channels, padding same": lambda m: (F.conv2d, (m(("B", "C", "H", "W")),
                                                                       _weight(4, 3, 3, 3)), {"padding": "same"}),
    "conv2d on symbolic channels, a channels-last weight": lambda m: (F.conv2d, (m(("B", "C", "H", "W")), _weight(
        4, 3, 3, 3).to(memory_format=torch.channels_last)), {"stride": 2}),
    "conv2d on symbolic channels of a permuted input": lambda m: (F.conv2d, (m(("B", "H", "W", "C")).permute(
        0, 3, 1, 2), _weight(4, 3, 3, 3)), {}),
    "linear on symbolic features that are not the weight's": lambda m: (F.linear, (m(("B", "C")), _weight(4, 8)),
                                                                        {}),
    "linear on symbolic features of a transposed input": lambda m: (F.linear, (m(("C", "B")).t(), _weight(4, 3)),
                                                                    {}),
    "flatten of torch's channels-last layout (Max(1, W//4) against W//4: a guard)": lambda m: (
        torch.flatten, (_torchs_channels_last(m), 2), {}),
    "flatten that copies (a transposed token batch's leading dims)": lambda m: (torch.flatten, (
        m(("B", "L", 8)).transpose(1, 2)[:, :4], 0, 1), {}),
    "attention on one head's queries cut from wider ones (not dense)": lambda m: (
        F.scaled_dot_product_attention, (m(("B", "L", 1, 16))[..., :8].transpose(1, 2),
                                         m(("B", "H", 1, 8)).transpose(1, 2), m(("B", "H", 1, 8)).transpose(1, 2)), {}),
    "cat of channels-last images along a symbolic dim": lambda m: (torch.cat, ([_attended(m), _attended(m)], 2), {}),
    "flatten that copies (a transposed token batch)": lambda m: (torch.flatten, (m(("B", "L", 8)).transpose(1, 2),
                                                                                 1), {}),
    "a residual onto tokens of another length (torch raises)": lambda m: (
        torch.Tensor.__add__, (_tokens(m), m(("B", 8, 34)).transpose(1, 2)), {}),
    "a residual of contiguous tokens onto a transposed branch of sizes written otherwise": lambda m: (
        torch.Tensor.__add__, (_tokens(m).contiguous(), m(("B", 8, 35)).transpose(1, 2)), {}),
    "a mul onto another permutation of torch's layout": lambda m: (torch.mul, (_weight(8, 1, 1),
                                                                               _torchs_layout(m).permute(0, 3, 2, 1)),
                                                                   {}),
}  # fmt: skip


@pytest.mark.parametrize("case", NOT_CARRIED)
def test_ops_torch_could_answer_otherwise_run_in_torch(case):
    run = _fresh_run()
    with run.running(grad=False):
        func, args, kwargs = NOT_CARRIED[case](lambda *a, **k: _make(run, *a, **k))
        assert carried(func, args, kwargs) is None, case


class M5(nn.Module):
    """An M5-style audio net: strided ``conv1d``, ``max_pool1d`` stages, an ``avg_pool1d`` over the
    whole remaining length, a classifier on the mean over what is left."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList(nn.Sequential(nn.Conv1d(c_in, c_out, k, s), nn.BatchNorm1d(c_out), nn.ReLU(),
                                                  nn.MaxPool1d(4))
                                    for c_in, c_out, k, s in ((1, 8, 80, 16), (8, 8, 3, 1), (8, 16, 3, 1)))  # fmt: skip
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)  # (B, C, L')
        x = F.avg_pool1d(x, x.shape[-1])  # (B, 16, 1)
        return self.head(x.mean(-1))  # (B, 5)


class ConvNeXtBlock(nn.Module):
    """A patchify stem on the image's symbolic channels, then a ConvNeXt block: depthwise conv,
    channels-last ``LayerNorm`` and MLP, a layer scale, a residual; a downsampling conv; the
    tokens flattened from the channels-last result; a cross-attention's key on symbolic features."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, 4)
        self.depthwise = nn.Conv2d(8, 8, 7, padding=3, groups=8)
        self.norm = nn.LayerNorm(8)
        self.mlp = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 8))
        self.scale = nn.Parameter(torch.full((8,), 0.1))
        self.down = nn.Conv2d(8, 16, 2, 2)
        self.key = nn.Linear(6, 16)

    def forward(self, image: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.stem(image)  # (B, 8, H/4, W/4)
        y = self.scale * self.mlp(self.norm(self.depthwise(x).permute(0, 2, 3, 1)))  # (B, H/4, W/4, 8)
        x = x + y.permute(0, 3, 1, 2)  # (B, 8, H/4, W/4)
        x = self.depthwise(x)  # (B, 8, H/4, W/4)
        tokens = self.down(x).flatten(2)  # (B, 16, H*W/64)
        return tokens.transpose(1, 2) @ self.key(context).transpose(1, 2)  # (B, H*W/64, S)


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "autograd"])
def test_an_audio_net_gives_what_torch_alone_gives(monkeypatch, grad):
    model = M5().eval()
    audio = torch.rand(2, 1, 4000)

    def run():
        with torch.set_grad_enabled(grad), shapetrace.trace(model, dims="B C L") as t:
            model(audio)
        return t

    first, alone = with_and_without_carrying(monkeypatch, run)
    assert everything(first) == everything(alone) and exact(first) == exact(alone)
    assert first.symbolic.state == "ran"
    pooled = [op.outputs[0].expr for op in first.ops if op.op == "max_pool1d"]
    assert pooled[0] == "(B, 8, L//64 - 1)" and "L" in pooled[-1]  # symbolic, as torch's


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "autograd"])
def test_a_convnext_block_gives_what_torch_alone_gives(monkeypatch, grad):
    model = ConvNeXtBlock().eval()
    image, context = torch.rand(2, 3, 64, 48), torch.rand(2, 5, 6)

    def run():
        with torch.set_grad_enabled(grad), shapetrace.trace(model, dims={"image": "B C H W", "context": "B S D"}) as t:
            model(image, context)
        return t

    first, alone = with_and_without_carrying(monkeypatch, run)
    assert everything(first) == everything(alone) and exact(first) == exact(alone)
    assert first.symbolic.state == "ran"
    assert {(s.dim, s.expr) for s in first.specializations} == {("C", "3"), ("D", "6")}
    assert first.ops[-1].outputs[0].expr == "(B, H*W/64, S)"
