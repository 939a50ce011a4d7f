"""Strided, unpadded and transposed convolutions, 2-d pools, upsampling by a scale factor and
constant pads are answered with torch's own formulas (shapetrace/symbolic/carried.py, ``_conv``,
``_conv_transpose``, ``_pool``, ``_interpolate``, ``_padded``): the output is torch's fake output (sizes,
strides, offset, dtype, device, requires_grad) and the ShapeEnv ends with torch's guards, value
ranges and replacements; where torch's fake op would lay the output out otherwise or parse the
arguments itself, it runs in torch."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from test_symbolic_carried import with_and_without_carrying  # a sibling test module (on sys.path)
from test_symbolic_reuse import everything, exact
from torch import nn

import shapetrace
from shapetrace._private import torch_symbolic as ts
from shapetrace.symbolic import bridge
from shapetrace.symbolic.carried import carried
from shapetrace.symbolic.dims import Names, symbol

SIZES = {"B": 2, "C": 3, "H": 30, "W": 23, "L": 1000}


def _fresh_run():
    names = Names()
    for name, value in SIZES.items():
        names.bind(name, value, "test")
    return bridge.FakeRun(names)


def _make(run, shape, dtype=torch.float32, requires_grad=False):
    canonical = tuple(symbol(s) if isinstance(s, str) else s for s in shape)
    concrete = tuple(SIZES[s] if isinstance(s, str) else s for s in shape)
    return run.tensor(canonical, concrete, dtype, torch.device("cpu"), requires_grad)


def _state(run) -> tuple:
    env = run.env
    return ([str(g) for g in ts.guard_exprs(env)], {str(k): str(v) for k, v in env.replacements.items()},
            {str(k): str(v) for k, v in env.var_to_range.items()})  # fmt: skip


def _described(t: torch.Tensor) -> tuple:
    return (tuple(str(s) for s in ts.size_exprs(t.shape)), tuple(str(s) for s in ts.size_exprs(t.stride())),
            str(ts.size_expr(t.storage_offset())), t.dtype, t.device, t.requires_grad, t.is_leaf)  # fmt: skip


def _both(build, grad=False) -> tuple:
    """``build(make)`` -> ``(func, args, kwargs)``, answered by torch and by the carried rule, each
    in a fresh fake run over the same dims: ``(torch's, ours)``, each the output and the ShapeEnv's
    guards, replacements and ranges after it; ``ours`` is ``None`` where the rule leaves the op."""
    results = []
    for answer in ("torch", "carried"):
        run = _fresh_run()
        with run.running(grad=grad):
            func, args, kwargs = build(lambda *a, run=run, **k: _make(run, *a, **k))
            if answer == "torch":
                with ts.python_dispatcher() if func in ts.python_dispatched() else contextlib.nullcontext():
                    results.append((_described(func(*args, **kwargs)), _state(run)))  # as the replay runs it
            else:
                made = carried(func, args, kwargs)
                results.append(None if made is None else (_described(made()), _state(run)))
    return tuple(results)


def _channels_last(pixels):
    """``(B, H, W, C)`` to ``(B, C, H, W)`` laid out channels-last (attention's output reshaped back)."""
    return pixels.permute(0, 3, 1, 2)


def _weight(*shape, grad=False):
    return torch.zeros(shape, requires_grad=grad)


CONVS = {
    "stem 7x7 stride 2": lambda m: (F.conv2d, (m(("B", 3, "H", "W")), _weight(8, 3, 7, 7), None, 2, 3), {}),
    "3x3 stride 2": lambda m: (F.conv2d, (m(("B", 8, "H", "W")), _weight(16, 8, 3, 3)), {"stride": 2, "padding": 1}),
    "1x1 stride 2 (a downsample)": lambda m: (F.conv2d, (m(("B", 8, "H", "W")), _weight(16, 8, 1, 1), _weight(16), 2),
                                              {}),
    "3x3 unpadded (a kernel that must fit)": lambda m: (F.conv2d, (m(("B", 8, "H", "W")), _weight(4, 8, 3, 3)), {}),
    "valid": lambda m: (F.conv2d, (m(("B", 8, "H", "W")), _weight(4, 8, 3, 3)), {"padding": "valid"}),
    "dilated, padded less": lambda m: (F.conv2d, (m(("B", 8, "H", "W")), _weight(4, 8, 3, 3)), {"padding": 1,
                                                                                             "dilation": 2}),
    "depthwise stride 2": lambda m: (F.conv2d, (m(("B", 8, "H", "W")), _weight(8, 1, 5, 5), None, (2, 2), 2, 1, 8), {}),
    "stride per dim": lambda m: (F.conv2d, (m(("B", 8, "H", "W")), _weight(4, 8, 3, 1)), {"stride": (2, 1)}),
    "conv1d on audio": lambda m: (F.conv1d, (m(("B", 1, "L")), _weight(8, 1, 80)), {"stride": 16}),
    "conv1d of a transposed sequence (torch makes it contiguous first), same size": lambda m: (
        F.conv1d, (m(("B", "L", 8)).transpose(1, 2), _weight(4, 8, 5)), {"padding": 2}),
    "conv1d of a transposed sequence, stride 2": lambda m: (F.conv1d, (m(("B", "L", 8)).transpose(1, 2),
                                                                       _weight(4, 8, 3), None, 2), {}),
    "conv1d of a layer-normed transposed sequence, grouped (wav2vec2's positions)": lambda m: (
        F.conv1d, (F.layer_norm(F.conv1d(m(("B", 1, "L")), _weight(8, 1, 80), None, 16).transpose(1, 2),
                                (8,)).transpose(1, 2), _weight(8, 2, 32), _weight(8)), {"padding": 16, "groups": 4}),
    "conv3d stride 2": lambda m: (F.conv3d, (m(("B", 2, 5, "H", "W")), _weight(4, 2, 3, 3, 3)), {"stride": 2,
                                                                                              "padding": 1}),
    "on a strided output": lambda m: (F.conv2d, (F.conv2d(m(("B", 3, "H", "W")), _weight(8, 3, 3, 3), None, 2, 1),
                                                 _weight(8, 8, 3, 3)), {"stride": 2}),
    "on a pooled image (B, C, 1, 1)": lambda m: (F.conv2d, (m(("B", 8, 1, 1)), _weight(4, 8, 1, 1)), {"stride": 2}),
    "transposed 2x2 stride 2 (a U-Net's up)": lambda m: (F.conv_transpose2d, (m(("B", 8, "H", "W")),
                                                                              _weight(8, 4, 2, 2), _weight(4), 2), {}),
    "transposed 4x4 stride 2 padded (DCGAN's)": lambda m: (F.conv_transpose2d, (m(("B", 8, "H", "W")),
                                                                                _weight(8, 4, 4, 4)),
                                                           {"stride": 2, "padding": 1}),
    "transposed with output padding, groups, dilation": lambda m: (
        F.conv_transpose2d, (m(("B", 8, "H", "W")), _weight(8, 2, 3, 3), None, 2, 1, 1, 2, (1, 2)), {}),
    "channels-last, stride 2": lambda m: (F.conv2d, (_channels_last(m(("B", "H", "W", 8))), _weight(4, 8, 3, 3)),
                                          {"stride": 2, "padding": 1}),
    "channels-last, same size": lambda m: (F.conv2d, (_channels_last(m(("B", "H", "W", 8))), _weight(16, 8, 3, 3),
                                                      _weight(16)), {"padding": 1}),
    "channels-last, 1x1": lambda m: (F.conv2d, (_channels_last(m(("B", "H", "W", 8))), _weight(16, 8, 1, 1)), {}),
    "channels-last, transposed": lambda m: (F.conv_transpose2d, (_channels_last(m(("B", "H", "W", 8))),
                                                                 _weight(8, 4, 2, 2)), {"stride": 2}),
    "on an image reshaped back (channels-last, written otherwise)": lambda m: (
        F.conv2d, (_reshaped_back(m), _weight(16, 8, 3, 3)), {"padding": 1}),
    "transposed 1d": lambda m: (F.conv_transpose1d, (m(("B", 8, "L")), _weight(8, 4, 16)), {"stride": 8}),
}  # fmt: skip

POOLS = {
    "max 3x3 stride 2 padded (ResNet's)": lambda m: (F.max_pool2d, (m(("B", 8, "H", "W")), 3, 2, 1), {}),
    "max ceil_mode (a guard on the last window)": lambda m: (F.max_pool2d, (m(("B", 8, "H", "W")), 3),
                                                             {"stride": 2, "ceil_mode": True}),
    "max, no stride": lambda m: (F.max_pool2d, (m(("B", 8, "H", "W")), (2, 3)), {}),
    "max dilated": lambda m: (F.max_pool2d, (m(("B", 8, "H", "W")), 3, 1, 1, 2), {}),
    "max on a symbolic channel count": lambda m: (F.max_pool2d, (m(("B", "C", "H", "W")), 2), {}),
    "avg 2x2 (DenseNet's transition)": lambda m: (F.avg_pool2d, (m(("B", 8, "H", "W")), 2), {}),
    "avg 3x3 stride 1 padded, no pad counted": lambda m: (F.avg_pool2d, (m(("B", 8, "H", "W")), 3, 1, 1),
                                                          {"count_include_pad": False}),
    "avg ceil_mode": lambda m: (F.avg_pool2d, (m(("B", 8, "H", "W")), 3, 2, 0, True), {}),
    "avg on a strided output": lambda m: (F.avg_pool2d, (F.max_pool2d(m(("B", 8, "H", "W")), 3, 2, 1), 2), {}),
}  # fmt: skip


def _reshaped_back(m):
    """Attention's output reshaped back to an image: ``(B, h*w, C)`` to ``(B, C, h, w)``, strides
    channels-last but written ``h*(C*w)``, on the sizes of a strided convolution's output."""
    image = F.conv2d(m(("B", 8, "H", "W")), _weight(8, 8, 3, 3), None, 2, 1)
    batch, channels, height, width = image.shape
    tokens = image.flatten(2).transpose(1, 2).contiguous() * 2  # (B, h*w, C)
    return tokens.transpose(1, 2).reshape(batch, channels, height, width)


UPSAMPLES = {
    "nearest by 2": lambda m: (F.interpolate, (m(("B", 8, "H", "W")),), {"scale_factor": 2.0, "mode": "nearest"}),
    "nearest by an int per dim": lambda m: (F.interpolate, (m(("B", 8, "H", "W")), None, (2, 3)), {}),
    "nearest by 1.5": lambda m: (F.interpolate, (m(("B", 8, "H", "W")),), {"scale_factor": 1.5}),
    "nearest on a sequence": lambda m: (F.interpolate, (m(("B", 8, "L")),), {"scale_factor": 4}),
    "nearest on a volume": lambda m: (F.interpolate, (m(("B", 2, 3, "H", "W")),), {"scale_factor": 2.0}),
    "nearest on channels-last": lambda m: (F.interpolate, (_channels_last(m(("B", "H", "W", 8))),),
                                           {"scale_factor": 2.0}),
    "nearest on an image reshaped back": lambda m: (F.interpolate, (_reshaped_back(m),), {"scale_factor": 2.0}),
    "bilinear by 2": lambda m: (F.interpolate, (m(("B", 8, "H", "W")),), {"scale_factor": 2.0, "mode": "bilinear"}),
    "bilinear by 2, corners aligned (nn.Upsample in a U-Net)": lambda m: (
        F.interpolate, (m(("B", 8, "H", "W")),), {"scale_factor": 2, "mode": "bilinear", "align_corners": True}),
    "bilinear by 1.5 on channels-last": lambda m: (F.interpolate, (_channels_last(m(("B", "H", "W", 8))),),
                                                   {"scale_factor": 1.5, "mode": "bilinear"}),
    "linear on a sequence": lambda m: (F.interpolate, (m(("B", 8, "L")),), {"scale_factor": 2.0, "mode": "linear"}),
    "trilinear on a volume": lambda m: (F.interpolate, (m(("B", 2, 3, "H", "W")),), {"scale_factor": 2,
                                                                                    "mode": "trilinear"}),
    "bicubic to a size, on position embeddings laid out channels-last (YOLOS, DeiT)": lambda m: (
        F.interpolate, (m((1, 64, 8)).transpose(1, 2).view(1, 8, 8, 8),),
        {"size": (m(("H",)).shape[0] // 8, m(("W",)).shape[0] // 8), "mode": "bicubic", "align_corners": False}),
    "bilinear to a size, on channels-last": lambda m: (F.interpolate, (_channels_last(m(("B", "H", "W", 8))),),
                                                       {"size": (4, 6), "mode": "bilinear"}),
}  # fmt: skip

NORMS = {
    "group_norm of a transposed token batch (B, C, L)": lambda m: (F.group_norm, (m(("B", "L", 8)).transpose(1, 2), 4,
                                                                                  _weight(8), _weight(8)), {}),
    "group_norm of an image reshaped back, flattened": lambda m: (F.group_norm, (
        _reshaped_back(m).view(_reshaped_back(m).shape[0], 8, -1), 2), {}),
}  # fmt: skip

PADS = {
    "TF-style same padding": lambda m: (F.pad, (m(("B", 8, "H", "W")), (0, 1, 0, 1)), {}),
    "all sides, a value": lambda m: (F.pad, (m(("B", 8, "H", "W")), [1, 1, 1, 1], "constant", 0.5), {}),
    "the last dim of a sequence": lambda m: (F.pad, (m(("B", "L")),), {"pad": (2, 0)}),
    "zeros": lambda m: (F.pad, (m(("B", 8, "H", "W")), (0, 0, 0, 0)), {"value": 0}),
    "three dims, a literal one among them": lambda m: (F.pad, (m(("B", 8, "H", 1)), (1, 1, 1, 1, 1, 1)), {}),
    "a pad that is a size": lambda m: (F.pad, (m(("B", 8, "H", "W")), (0, m(("H",)).shape[0])), {}),
}  # fmt: skip


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "autograd"])
@pytest.mark.parametrize("case", [*CONVS, *POOLS, *UPSAMPLES, *NORMS, *PADS])
def test_spatial_ops_are_torchs_output_and_guards(case, grad):
    build = {**CONVS, **POOLS, **UPSAMPLES, **NORMS, **PADS}[case]
    with_grad = (lambda m: build(lambda shape: m(shape, requires_grad=True))) if grad else build
    torchs, ours = _both(with_grad, grad=grad)
    assert ours is not None, case
    assert ours[0] == torchs[0], case  # sizes, strides, offset, dtype, device, requires_grad, leaf
    if grad:  # a new output that needs grad is made in a graph (not a leaf): its layout questions fix no dim
        assert ours[1][1] == torchs[1][1], case  # replacements
    else:
        _assumes_no_more_than_torch(ours[1], torchs[1], case)


def _assumes_no_more_than_torch(ours: tuple, torchs: tuple, case: str) -> None:
    """The same replacements; each guard one of torch's or their conjunction (torch's conv checks
    each dim on its own, its meta function all at once); each value range as wide as torch's or
    wider. Torch's fake convolution also asks, picking a backend and a layout, questions whose
    guards fix no dim (``B < 16``; under autograd, ``Ne(H', 1)`` about its output): not asked."""
    (our_guards, our_replacements, our_ranges), (guards, replacements, ranges) = ours, torchs
    assert our_replacements == replacements, case
    for guard in our_guards:
        assert guard in guards or all(part[1:-1] in guards for part in guard.split(" & ")), (case, guard)
    for name, our_range in our_ranges.items():
        low, high = (int(v) if v.lstrip("-").isdigit() else v for v in our_range[3:-1].split(", "))
        torch_low, torch_high = (int(v) if v.lstrip("-").isdigit() else v for v in ranges[name][3:-1].split(", "))
        assert low <= torch_low and (high == "int_oo" or torch_high != "int_oo" and high >= torch_high), case


def test_the_formulas_give_torchs_new_expressions_and_guards():
    """What the cases above compare, on three of them: new expressions, and the guards torch adds."""
    torchs, ours = _both(CONVS["stem 7x7 stride 2"])
    assert ours[0][0][2:] == torchs[0][0][2:] == ("(((s1 - 1)//2)) + 1", "(((s36 - 1)//2)) + 1")
    torchs, ours = _both(CONVS["3x3 unpadded (a kernel that must fit)"])
    assert ours[1][0] == ["(s1 >= 3) & (s36 >= 3)"] and {"s1 >= 3", "s36 >= 3"} <= set(torchs[1][0])
    torchs, ours = _both(POOLS["max ceil_mode (a guard on the last window)"])
    assert ours[1] == torchs[1] and len(ours[1][0]) == 2


NOT_CARRIED = {
    "an input permuted otherwise": lambda m: (F.conv2d, (m(("B", "W", 8, "H")).permute(0, 2, 3, 1),
                                                         _weight(4, 8, 3, 3)), {"stride": 2}),
    "a channels-last weight": lambda m: (F.conv2d, (m(("B", 8, "H", "W")), _weight(4, 8, 3, 3).to(
        memory_format=torch.channels_last)), {"stride": 2}),
    "symbolic channels into a transposed conv": lambda m: (F.conv_transpose2d, (m(("B", "C", "H", "W")),
                                                                                _weight(3, 4, 2, 2)), {"stride": 2}),
    "a transposed conv's channels-last weight": lambda m: (F.conv_transpose2d, (m(("B", 8, "H", "W")), _weight(
        8, 4, 2, 2).to(memory_format=torch.channels_last)), {"stride": 2}),
    "an unbatched input": lambda m: (F.conv2d, (m((8, "H", "W")), _weight(4, 8, 3, 3)), {"stride": 2}),
    "same with a stride (torch raises)": lambda m: (F.conv2d, (m(("B", 8, "H", "W")), _weight(4, 8, 3, 3)),
                                                    {"stride": 2, "padding": "same"}),
    "a weight in another dtype": lambda m: (F.conv2d, (m(("B", 8, "H", "W")), _weight(4, 8, 3, 3).double()),
                                            {"stride": 2}),
    "indices returned": lambda m: (F.max_pool2d, (m(("B", 8, "H", "W")), 2), {"return_indices": True}),
    "a divisor": lambda m: (F.avg_pool2d, (m(("B", 8, "H", "W")), 2), {"divisor_override": 3}),
    "a 3-d input to a 2-d pool": lambda m: (F.max_pool2d, (m((8, "H", "W")), 2), {}),
    "a permuted input to a pool": lambda m: (F.max_pool2d, (m(("B", "H", "W", 8)).permute(0, 3, 1, 2), 2), {}),
    "an integer input to a pool": lambda m: (F.avg_pool2d, (m(("B", 8, "H", "W"), dtype=torch.int64), 2), {}),
    "a kernel of three ints": lambda m: (F.max_pool2d, (m(("B", 8, "H", "W")), (2, 2, 2)), {}),
    "group_norm of a 3-d slice (not dense)": lambda m: (F.group_norm, (m(("B", 8, "L"))[:, :, ::2], 4), {}),
    "batch_norm of a transposed token batch": lambda m: (F.batch_norm, (m(("B", "L", 8)).transpose(1, 2),
                                                                        _weight(8), _weight(8)), {}),
    "bicubic by a scale": lambda m: (F.interpolate, (m(("B", 8, "H", "W")),), {"scale_factor": 2.0,
                                                                              "mode": "bicubic"}),
    "antialiased bilinear": lambda m: (F.interpolate, (m(("B", 8, "H", "W")),), {"size": (4, 6), "mode": "bilinear",
                                                                                "antialias": True}),
    "bilinear on a sequence (torch raises)": lambda m: (F.interpolate, (m(("B", 8, "L")),), {"scale_factor": 2.0,
                                                                                            "mode": "bilinear"}),
    "nearest with corners aligned (torch raises)": lambda m: (F.interpolate, (m(("B", 8, "H", "W")),), {
        "scale_factor": 2.0, "align_corners": True}),
    "area on channels-last": lambda m: (F.interpolate, (_channels_last(m(("B", "H", "W", 8))),), {"size": (4, 6),
                                                                                                 "mode": "area"}),
    "a recomputed scale": lambda m: (F.interpolate, (m(("B", 8, "H", "W")),), {"scale_factor": 2.0,
                                                                               "recompute_scale_factor": True}),
    "a size and a scale (torch raises)": lambda m: (F.interpolate, (m(("B", 8, "H", "W")), 4, 2.0), {}),
    "an upsampled transpose": lambda m: (F.interpolate, (m(("B", 8, "W", "H")).transpose(2, 3),), {"scale_factor": 2}),
    "a negative pad (torch narrows)": lambda m: (F.pad, (m(("B", 8, "H", "W")), (1, -1)), {}),
    "a reflection": lambda m: (F.pad, (m(("B", 8, "H", "W")), (1, 1)), {"mode": "reflect"}),
    "pads of odd length": lambda m: (F.pad, (m(("B", 8, "H", "W")), (1, 1, 1)), {}),
    "more pads than dims": lambda m: (F.pad, (m(("B", "L")), (1, 1, 1, 1, 1, 1)), {}),
    "conv1d of a sequence cut along its length (not dense)": lambda m: (
        F.conv1d, (m(("B", 8, "L"))[:, :, ::2], _weight(4, 8, 3)), {"stride": 2}),
    "a transposed input to a pad": lambda m: (F.pad, (m(("B", "W", "H")).transpose(1, 2), (1, 1)), {}),
}  # fmt: skip


@pytest.mark.parametrize("case", NOT_CARRIED)
def test_ops_torch_lays_out_or_parses_itself_run_in_torch(case):
    run = _fresh_run()
    with run.running(grad=False):
        func, args, kwargs = NOT_CARRIED[case](lambda *a, **k: _make(run, *a, **k))
        assert carried(func, args, kwargs) is None, case


class Downsampling(nn.Module):
    """A ResNet stem and a bottleneck that downsamples (padded TF-style), a DenseNet transition, a
    ceil-mode pool."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))  # fmt: skip
        self.branch = nn.Sequential(nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, 2, 1), nn.Conv2d(8, 16, 1))
        self.shortcut = nn.Conv2d(8, 16, 1, stride=2)
        self.transition = nn.Sequential(nn.Conv2d(16, 8, 1), nn.AvgPool2d(2))
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 8, H/4, W/4)
        x = self.branch(F.pad(x, (0, 1, 0, 1))[..., :-1, :-1]) + self.shortcut(x)  # (B, 16, H/8, W/8)
        return self.pool(self.transition(x))  # (B, 8, H/32, (((W - 1)//8 - 1)//2 - 1)//2 + 1)


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "autograd"])
def test_a_downsampling_net_gives_what_torch_alone_gives(monkeypatch, grad):
    model = Downsampling().eval()
    images = torch.rand(2, 3, 96, 80)

    def run():
        with torch.set_grad_enabled(grad), shapetrace.trace(model, dims="B C H W") as t:
            model(images)
        return t

    first, alone = with_and_without_carrying(monkeypatch, run)
    assert everything(first) == everything(alone) and exact(first) == exact(alone)
    assert first.symbolic.state == "ran"
    by_op = {op.op: op.outputs[0].expr for op in first.ops}
    assert by_op["max_pool2d"] != "(B, 8, 5, 4)" and "H" in by_op["avg_pool2d"]  # symbolic all along


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.skip = nn.Conv2d(8, 8, 1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)      # (B, 8, (H - 1)//2 + 1, (W - 1)//2 + 1)
        out = self.conv(x)    # (B, 8, H/4, W/4)
        out += self.skip(x)   # in place, on a new output that needs grad
        return out.relu_()    # (B, 8, H/4, W/4)


def test_in_place_ops_on_new_outputs_that_need_grad_run_in_the_pass():
    model, images = Residual().train(), torch.rand(2, 3, 64, 48)
    with shapetrace.trace(model, dims="B C H W") as t:
        model(images)
    assert t.symbolic.state == "ran"
    assert [op.op for op in t.ops] == ["conv2d", "conv2d", "conv2d", "+=", "relu_"]
    assert all("H" in op.outputs[0].expr and "W" in op.outputs[0].expr for op in t.ops), [o.outputs[0].expr for o in t.ops]
