"""The pass's ShapeEnv decides relations from value ranges before torch's own static evaluation
(shapetrace/_private/torch_symbolic.py, RecordingShapeEnv): the expressions, specialisations and
verdicts are those torch's evaluation alone gives, on the examples and on real layouts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_symbolic_reuse import (  # a sibling test module (pytest puts tests/symbolic on sys.path)
    EXAMPLES,
    everything,
    with_and_without,
)
from torch import nn
from torch.fx.experimental.symbolic_shapes import ShapeEnv

import shapetrace
from shapetrace._private import torch_symbolic as ts


def with_and_without_ranges_first(monkeypatch, run) -> tuple:
    """Relations decided from ranges first, then by torch alone."""
    return with_and_without(monkeypatch, run,
                            (ts.RecordingShapeEnv, "_maybe_evaluate_static", ShapeEnv._maybe_evaluate_static))  # fmt: skip


class DenseStage(nn.Module):
    """DenseNet-like: strided stem, pools, concatenations over growing channel counts, upsampling."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 7, 2, 3)
        self.norms = nn.ModuleList(nn.BatchNorm2d(8 + 4 * i) for i in range(3))
        self.convs = nn.ModuleList(nn.Conv2d(8 + 4 * i, 4, 3, padding=1) for i in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.stem(x), 3, 2, 1)
        for norm, conv in zip(self.norms, self.convs):
            x = torch.cat([x, conv(F.relu(norm(x)))], 1)
        x = F.avg_pool2d(x, 2)
        return F.interpolate(x, scale_factor=2.0) + x.mean()


def test_a_dense_conv_stage_gives_what_torch_alone_gives(monkeypatch):
    model = DenseStage().eval()
    images = torch.rand(2, 3, 64, 48)

    def run():
        with torch.no_grad(), shapetrace.trace(model, dims="B C H W") as t:
            model(images)
        return t

    first, alone = with_and_without_ranges_first(monkeypatch, run)
    assert everything(first) == everything(alone)
    assert first.symbolic.state == "ran"
    assert first.ops[-1].outputs[0].expr == "(B, 20, H/4, W/4)"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_examples_give_what_torch_alone_gives(monkeypatch, examples, name):
    def run():
        with shapetrace.trace() as t:
            getattr(examples.load(name), EXAMPLES[name])()
        return t

    first, alone = with_and_without_ranges_first(monkeypatch, run)
    assert everything(first) == everything(alone)


def transformers_layout(kind: str) -> tuple:
    """A 2-layer GPT-2 or ViT from a transformers config, in eval mode: (model, inputs, dims)."""
    transformers = pytest.importorskip("transformers")
    if kind == "gpt2":
        config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=32)
        model, inputs, dims = transformers.GPT2LMHeadModel(config), {"input_ids": torch.randint(0, 100, (2, 7))}, {
            "input_ids": "B T"}  # fmt: skip
    else:
        config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                        intermediate_size=64, image_size=32, patch_size=8)  # fmt: skip
        model, inputs, dims = transformers.ViTModel(config), {"pixel_values": torch.rand(2, 3, 32, 32)}, {
            "pixel_values": "B C H W"}  # fmt: skip
    return model.eval(), inputs, dims


@pytest.mark.parametrize("kind", ["gpt2", "vit"])
def test_transformers_layouts_give_what_torch_alone_gives(monkeypatch, kind):
    model, inputs, dims = transformers_layout(kind)

    def run():
        with torch.no_grad(), shapetrace.trace(model, dims=dims) as t:
            model(**inputs)
        return t

    first, alone = with_and_without_ranges_first(monkeypatch, run)
    assert everything(first) == everything(alone)
    assert first.symbolic.state == "ran"


@pytest.mark.parametrize("kind", ["unet", "vae"])
def test_diffusers_layouts_give_what_torch_alone_gives(monkeypatch, kind):
    diffusers = pytest.importorskip("diffusers")
    if kind == "unet":
        model = diffusers.UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1,
                                      block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
                                      up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4)  # fmt: skip
        inputs = {"sample": torch.rand(2, 3, 16, 16), "timestep": torch.tensor([10, 500])}
    else:
        model = diffusers.AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16),
                                        latent_channels=4, norm_num_groups=4, layers_per_block=1)  # fmt: skip
        inputs = {"sample": torch.rand(2, 3, 16, 16)}
    model.eval()

    def run():
        with torch.no_grad(), shapetrace.trace(model, dims={"sample": "B C H W"}) as t:
            model(**inputs)
        return t

    first, alone = with_and_without_ranges_first(monkeypatch, run)
    assert everything(first) == everything(alone)
    assert first.symbolic.symbolic_ops > 0
