"""Ops whose C++ kernels fix every size (interpolation, padding, FFTs, unfold) or reject symbolic
sizes (recurrent layers) run with torch's Python dispatcher: B, H, W stay symbolic, and what is
still specialised is what the op's decomposition really needs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import shapetrace


def trace_of(model: nn.Module, x: torch.Tensor, dims: str):
    with torch.no_grad(), shapetrace.trace(model, dims=dims) as t:
        model(x)
    return t


class Lambda(nn.Module):
    def __init__(self, function) -> None:
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


@pytest.mark.parametrize(
    "function, expected",
    [
        (lambda x: F.interpolate(x, scale_factor=2), "(B, C, 2*H, 2*W)"),
        (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), "(B, C, 2*H, 2*W)"),
        (nn.Upsample(scale_factor=2, mode="nearest"), "(B, C, 2*H, 2*W)"),
        (lambda x: F.interpolate(x, size=(x.shape[2] * 2, x.shape[3])), "(B, C, 2*H, W)"),
        (lambda x: F.pad(x, (1, 2, 3, 4)), "(B, C, H + 7, W + 3)"),
        (lambda x: F.pad(x, (1, 1, 1, 1), mode="reflect"), "(B, C, H + 2, W + 2)"),
        # C: the weight fixes it to 4, and the 4 output channels are C by value only
        (nn.ConvTranspose2d(4, 4, 2, stride=2), "(B, C?, 2*H, 2*W)"),
        (nn.MaxPool2d(2), "(B, C, H/2, W/2)"),  # 12 and 10 are even: H//2 written H/2
        (nn.AvgPool2d(2), "(B, C, H/2, W/2)"),
        (lambda x: torch.fft.rfft2(x).abs(), "(B, C, H, W/2 + 1)"),
        (lambda x: F.unfold(x, 2, stride=2), "(B, 4*C, H*W/4)"),
    ],
)
def test_resampling_padding_and_ffts_keep_every_dim_symbolic(function, expected):
    model = function if isinstance(function, nn.Module) else Lambda(function)
    t = trace_of(model, torch.rand(2, 4, 12, 10), "B C H W")
    assert t.symbolic.state == "ran", t.symbolic.reason
    assert t.modules[0].outputs[0].expr == expected
    assert [s for s in t.specializations if s.dim in ("B", "H", "W")] == []


def test_a_unet_decoder_keeps_b_h_w_through_upsampling_padding_and_skip_connections():
    class Up(nn.Module):
        """milesial/Pytorch-UNet's Up: upsample, pad to the skip's size, concatenate, convolve."""

        def __init__(self, channels: int) -> None:
            super().__init__()
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = nn.Conv2d(2 * channels, channels, 3, padding=1)

        def forward(self, x, skip):
            x = self.up(x)  # (B, C, 2*h, 2*w)
            dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])  # (B, C, H, W)
            return self.conv(torch.cat([skip, x], dim=1))  # (B, C, H, W)

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
            self.up = Up(8)

        def forward(self, x):
            return self.up(self.down(x), x)

    t = trace_of(Tiny(), torch.rand(2, 8, 16, 16), "B C H W")
    assert t.symbolic.state == "ran", t.symbolic.reason
    assert next(op for op in t.ops if op.op == "cat").outputs[0].expr == "(B, 16, H, W)"
    assert t.modules[0].outputs[0].expr == "(B, 8, H, W)"  # 8 channels out: the conv's weight fixes them, not C
    assert {s.dim for s in t.specializations} <= {"C"}  # C = 8: the conv's weight needs it


def test_an_lstm_keeps_batch_and_time_symbolic():
    lstm = nn.LSTM(6, 5, batch_first=True)
    t = trace_of(Lambda(lambda x: lstm(x)[0]), torch.rand(3, 7, 6), "B T D")
    assert t.symbolic.state == "ran", t.symbolic.reason
    assert t.modules[0].outputs[0].expr == "(B, T, 5)"
    assert {s.dim for s in t.specializations} == {"D"}  # the input size is the layer's


def test_a_specialisation_that_remains_is_true_for_the_op():
    """A GRU's decomposition unrolls its time steps: T is fixed there (and named there), B is not."""
    gru = nn.GRU(6, 5, batch_first=True)
    t = trace_of(Lambda(lambda x: gru(x)[0]), torch.rand(3, 7, 6), "B T D")
    fixed = {s.dim: s for s in t.specializations}
    assert "B" not in fixed and fixed["T"].value == 7 and fixed["T"].reason.startswith("gru needs")
    assert t.modules[0].outputs[0].expr == "(B, T?, 5)"  # the 7 T was fixed to: T by value only


def test_ops_outside_modules_use_the_python_dispatcher_too():
    B, C, H, W = 2, 3, 8, 6
    with shapetrace.trace() as t:
        image = torch.rand(B, C, H, W)
        up = F.interpolate(image, scale_factor=2)
        padded = F.pad(up, (1, 1))
    assert t.symbolic.state == "ran"
    assert [op.outputs[0].expr for op in t.ops] == ["(B, C, H, W)", "(B, C, 2*H, 2*W)", "(B, C, 2*H, 2*W + 2)"]
    assert t.specializations == []
    assert padded.shape == (2, 3, 16, 14)
