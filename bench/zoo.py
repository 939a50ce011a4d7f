"""A zoo of architectures built locally (no downloads, no weights) for the symbolic-pass bench.

Each entry is a function returning a :class:`ZooModel`: the model, its example inputs (positional
arguments, or keyword arguments for library models called by name) and the dims spec that names
the input dims (``"B C H W"``, or ``{"input_ids": "B S", "decoder_input_ids": "B T"}``).
Sizes are chosen so that a plain forward takes about 5-100 ms on one CPU thread.

Where a library builds the model from a config, the library class is used (transformers,
diffusers, torch.nn.Transformer): that is the code users run. The rest are written here in the
style of their reference implementations (torchvision's ResNet/DenseNet/DeepLab, nanoGPT, DiT,
milesial's U-Net, ...). ``group="depth"`` marks the LLaMA-style models built on ``meta`` at 2 and
32 layers: a depth-scaling check, not part of the zoo's ratios.

    from zoo import ZOO
    case = ZOO["resnet18"].build()
    case()  # a plain forward
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

# --- the registry ---------------------------------------------------------------------------------


class ZooModel(NamedTuple):
    """A model, its example inputs (a tuple of positional arguments or a dict of keyword
    arguments) and the dims spec for ``shapetrace.trace(model, dims=...)``."""

    model: nn.Module
    inputs: tuple | dict[str, Any]
    dims: str | dict[str, str]

    def __call__(self) -> Any:
        if isinstance(self.inputs, dict):
            return self.model(**self.inputs)
        return self.model(*self.inputs)


@dataclass(frozen=True)
class Entry:
    name: str
    build: Callable[[], ZooModel]
    source: str  # "local", "transformers", "diffusers" or "torch"
    group: str  # "zoo", or "depth" for the meta-device depth check


ZOO: dict[str, Entry] = {}


def register(name: str, source: str = "local", group: str = "zoo") -> Callable:
    def add(build: Callable[[], ZooModel]) -> Callable[[], ZooModel]:
        ZOO[name] = Entry(name, build, source, group)
        return build

    return add


def tokens(batch: int, length: int, vocab: int = 1000) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length))


# --- ResNet-18 (torchvision's layout) ---------------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x                                                     # (B, C, H, W)
        out = self.relu(self.bn1(self.conv1(x)))                         # (B, P, H/s, W/s)
        out = self.bn2(self.conv2(out))                                  # (B, P, H/s, W/s)
        if self.downsample is not None:
            identity = self.downsample(x)                                # (B, P, H/s, W/s)
        out += identity                                                  # (B, P, H/s, W/s)
        return self.relu(out)                                            # (B, P, H/s, W/s)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000, widths: tuple[int, ...] = (64, 128, 256, 512)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, inplanes = [], widths[0]
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes)))
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))             # (B, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))        # (B, 512, H/32, W/32)
        x = torch.flatten(self.avgpool(x), 1)                            # (B, 512)
        return self.fc(x)                                                # (B, 1000)


@register("resnet18")
def resnet18() -> ZooModel:
    return ZooModel(ResNet18(), (torch.rand(2, 3, 112, 112),), "B C H W")


@register("resnet50_hf", "transformers")
def resnet50_hf() -> ZooModel:
    from transformers import ResNetConfig, ResNetModel

    config = ResNetConfig(embedding_size=32, hidden_sizes=[128, 256, 512, 1024], depths=[2, 2, 3, 2],
                          layer_type="bottleneck")  # fmt: skip
    return ZooModel(ResNetModel(config), {"pixel_values": torch.rand(2, 3, 112, 112)}, {"pixel_values": "B C H W"})


@register("regnet_hf", "transformers")
def regnet_hf() -> ZooModel:
    from transformers import RegNetConfig, RegNetModel

    config = RegNetConfig(embedding_size=32, hidden_sizes=[32, 64, 160, 384], depths=[1, 2, 3, 1], groups_width=16,
                          layer_type="y")  # fmt: skip
    return ZooModel(RegNetModel(config), {"pixel_values": torch.rand(2, 3, 128, 128)}, {"pixel_values": "B C H W"})


# --- MobileNets, EfficientNet ------------------------------------------------------------------------


@register("mobilenet_v2_hf", "transformers")
def mobilenet_v2_hf() -> ZooModel:
    from transformers import MobileNetV2Config, MobileNetV2Model

    config = MobileNetV2Config(depth_multiplier=0.75, image_size=128)
    return ZooModel(MobileNetV2Model(config), {"pixel_values": torch.rand(2, 3, 128, 128)},
                    {"pixel_values": "B C H W"})  # fmt: skip


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(F.relu(self.fc1(self.avgpool(x))))              # (B, C, 1, 1)
        return x * F.hardsigmoid(scale)                                  # (B, C, H, W)


class InvertedResidualV3(nn.Module):
    def __init__(self, cin: int, kernel: int, expanded: int, cout: int, se: bool, hswish: bool, stride: int) -> None:
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != cin:
            layers += [nn.Conv2d(cin, expanded, 1, bias=False), nn.BatchNorm2d(expanded), act()]
        layers += [nn.Conv2d(expanded, expanded, kernel, stride, kernel // 2, groups=expanded, bias=False),
                   nn.BatchNorm2d(expanded), act()]  # fmt: skip
        if se:
            layers.append(SqueezeExcitation(expanded, _make_divisible(expanded // 4)))
        layers += [nn.Conv2d(expanded, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)                                              # (B, C', H/s, W/s)
        return out + x if self.use_res_connect else out                  # (B, C', H/s, W/s)


def _make_divisible(v: float, divisor: int = 8) -> int:
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


class MobileNetV3Small(nn.Module):
    """torchvision's mobilenet_v3_small layout: (in, kernel, expanded, out, SE, hardswish, stride)."""

    SETTINGS = [(16, 3, 16, 16, True, False, 2), (16, 3, 72, 24, False, False, 2), (24, 3, 88, 24, False, False, 1),
                (24, 5, 96, 40, True, True, 2), (40, 5, 240, 40, True, True, 1), (40, 5, 240, 40, True, True, 1),
                (40, 5, 120, 48, True, True, 1), (48, 5, 144, 48, True, True, 1), (48, 5, 288, 96, True, True, 2),
                (96, 5, 576, 96, True, True, 1), (96, 5, 576, 96, True, True, 1)]  # fmt: skip

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())]
        layers += [InvertedResidualV3(*setting) for setting in self.SETTINGS]
        layers.append(nn.Sequential(nn.Conv2d(96, 576, 1, bias=False), nn.BatchNorm2d(576), nn.Hardswish()))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(576, 1024), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(1024, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))                               # (B, 576, 1, 1)
        return self.classifier(torch.flatten(x, 1))                      # (B, 1000)


@register("mobilenet_v3_small")
def mobilenet_v3_small() -> ZooModel:
    return ZooModel(MobileNetV3Small(), (torch.rand(4, 3, 160, 160),), "B C H W")


@register("efficientnet_hf", "transformers")
def efficientnet_hf() -> ZooModel:
    from transformers import EfficientNetConfig, EfficientNetModel

    config = EfficientNetConfig(image_size=128, width_coefficient=1.0, depth_coefficient=1.0, hidden_dim=1280)
    return ZooModel(EfficientNetModel(config), {"pixel_values": torch.rand(2, 3, 128, 128)},
                    {"pixel_values": "B C H W"})  # fmt: skip


@register("mobilevit_hf", "transformers")
def mobilevit_hf() -> ZooModel:
    from transformers import MobileViTConfig, MobileViTModel

    config = MobileViTConfig(image_size=128, hidden_sizes=[64, 80, 96], neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320],
                             expand_ratio=2.0)  # fmt: skip  (mobilevit-xx-small)
    return ZooModel(MobileViTModel(config), {"pixel_values": torch.rand(2, 3, 128, 128)},
                    {"pixel_values": "B C H W"})  # fmt: skip


# --- DenseNet (torchvision's layout) ------------------------------------------------------------------


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)                                       # (B, C + i*k, H, W)
        x = self.conv1(F.relu(self.norm1(x)))                            # (B, 4k, H, W)
        return self.conv2(F.relu(self.norm2(x)))                         # (B, k, H, W)


class DenseBlock(nn.ModuleDict):
    def __init__(self, layers: int, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        for i in range(layers):
            self[f"denselayer{i + 1}"] = DenseLayer(cin + i * growth, growth, bn_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))                             # (B, k, H, W)
        return torch.cat(features, 1)                                    # (B, C + n*k, H, W)


class DenseNet(nn.Module):
    def __init__(self, growth: int = 16, blocks: tuple[int, ...] = (4, 8, 12, 8), init: int = 32, bn_size: int = 4,
                 num_classes: int = 1000) -> None:  # fmt: skip
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, init, 7, 2, 3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(init))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool2d(3, 2, 1))
        channels = init
        for i, layers in enumerate(blocks):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(layers, channels, growth, bn_size))
            channels += layers * growth
            if i != len(blocks) - 1:
                transition = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                           nn.Conv2d(channels, channels // 2, 1, bias=False), nn.AvgPool2d(2, 2))  # fmt: skip
                self.features.add_module(f"transition{i + 1}", transition)
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = F.relu(self.features(x), inplace=True)                # (B, C, H/32, W/32)
        out = F.adaptive_avg_pool2d(features, (1, 1))                    # (B, C, 1, 1)
        return self.classifier(torch.flatten(out, 1))                    # (B, 1000)


@register("densenet")
def densenet() -> ZooModel:
    return ZooModel(DenseNet(), (torch.rand(2, 3, 128, 128),), "B C H W")


# --- ConvNeXt, Swin, ViT, MLP-Mixer, Segformer ----------------------------------------------------------


@register("convnext_hf", "transformers")
def convnext_hf() -> ZooModel:
    from transformers import ConvNextConfig, ConvNextModel

    config = ConvNextConfig(hidden_sizes=[48, 96, 192, 384], depths=[2, 2, 4, 2], image_size=128)
    return ZooModel(ConvNextModel(config), {"pixel_values": torch.rand(2, 3, 128, 128)}, {"pixel_values": "B C H W"})


@register("swin_hf", "transformers")
def swin_hf() -> ZooModel:
    from transformers import SwinConfig, SwinModel

    # 252 / 4 = 63 tokens a side, then 32, 16, 8: windows of 7 need padding from stage 2 on (pad + roll)
    config = SwinConfig(image_size=252, patch_size=4, embed_dim=32, depths=[2, 2, 2, 2], num_heads=[2, 4, 8, 16],
                        window_size=7)  # fmt: skip
    return ZooModel(SwinModel(config), {"pixel_values": torch.rand(1, 3, 252, 252)}, {"pixel_values": "B C H W"})


@register("vit_hf", "transformers")
def vit_hf() -> ZooModel:
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(hidden_size=192, num_hidden_layers=6, num_attention_heads=3, intermediate_size=768,
                       image_size=128, patch_size=16)  # fmt: skip
    return ZooModel(ViTModel(config), {"pixel_values": torch.rand(8, 3, 128, 128)}, {"pixel_values": "B C H W"})


@register("small_vit")
def small_vit() -> ZooModel:
    from models import SmallViT

    return ZooModel(SmallViT(), (torch.rand(8, 3, 128, 128),), "B C H W")


class MixerBlock(nn.Module):
    def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mlp = nn.Sequential(nn.Linear(tokens, token_hidden), nn.GELU(), nn.Linear(token_hidden, tokens))
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = nn.Sequential(nn.Linear(dim, channel_hidden), nn.GELU(), nn.Linear(channel_hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x).transpose(1, 2)                                # (B, D, N)
        x = x + self.token_mlp(y).transpose(1, 2)                        # (B, N, D)
        return x + self.channel_mlp(self.norm2(x))                       # (B, N, D)


class MLPMixer(nn.Module):
    def __init__(self, image: int = 64, patch: int = 8, dim: int = 128, depth: int = 6, num_classes: int = 100) -> None:
        super().__init__()
        tokens = (image // patch) ** 2
        self.stem = nn.Conv2d(3, dim, patch, patch)
        self.blocks = nn.Sequential(*(MixerBlock(tokens, dim, 64, 512) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x).flatten(2).transpose(1, 2)                      # (B, N, D)
        x = self.norm(self.blocks(x))                                    # (B, N, D)
        return self.head(x.mean(dim=1))                                  # (B, 100)


@register("mlp_mixer")
def mlp_mixer() -> ZooModel:
    return ZooModel(MLPMixer(), (torch.rand(8, 3, 64, 64),), "B C H W")


@register("segformer_hf", "transformers")
def segformer_hf() -> ZooModel:
    from transformers import SegformerConfig, SegformerModel

    config = SegformerConfig(depths=[2, 2, 2, 2], hidden_sizes=[32, 64, 160, 256], num_attention_heads=[1, 2, 5, 8])
    return ZooModel(SegformerModel(config), {"pixel_values": torch.rand(2, 3, 128, 128)},
                    {"pixel_values": "B C H W"})  # fmt: skip


# --- dense prediction: U-Net, FPN, DeepLab ASPP -----------------------------------------------------------


class DoubleConv(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.double_conv = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)                                       # (B, C', H, W)


class Down(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)                                      # (B, C', H/2, W/2)


class Up(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = DoubleConv(cin, cout)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        x1 = self.up(x1)                                                 # (B, C/2, 2h, 2w)
        diff_y = x2.size()[2] - x1.size()[2]
        diff_x = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])  # (B, C/2, H, W)
        return self.conv(torch.cat([x2, x1], dim=1))                     # (B, C', H, W)


class UNet(nn.Module):
    """milesial/Pytorch-UNet's layout (odd sizes are padded back up in ``Up``)."""

    def __init__(self, channels: int = 3, classes: int = 2, width: int = 16) -> None:
        super().__init__()
        w = width
        self.inc = DoubleConv(channels, w)
        self.down1, self.down2, self.down3, self.down4 = Down(w, 2 * w), Down(2 * w, 4 * w), Down(4 * w, 8 * w), Down(8 * w, 16 * w)
        self.up1, self.up2, self.up3, self.up4 = Up(16 * w, 8 * w), Up(8 * w, 4 * w), Up(4 * w, 2 * w), Up(2 * w, w)
        self.outc = nn.Conv2d(w, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)                                                 # (B, w, H, W)
        x2 = self.down1(x1)                                              # (B, 2w, H/2, W/2)
        x3 = self.down2(x2)                                              # (B, 4w, H/4, W/4)
        x4 = self.down3(x3)                                              # (B, 8w, H/8, W/8)
        x5 = self.down4(x4)                                              # (B, 16w, H/16, W/16)
        x = self.up1(x5, x4)                                             # (B, 8w, H/8, W/8)
        x = self.up2(x, x3)                                              # (B, 4w, H/4, W/4)
        x = self.up3(x, x2)                                              # (B, 2w, H/2, W/2)
        x = self.up4(x, x1)                                              # (B, w, H, W)
        return self.outc(x)                                              # (B, classes, H, W)


@register("unet")
def unet() -> ZooModel:
    return ZooModel(UNet(), (torch.rand(2, 3, 72, 72),), "B C H W")


def conv_bn_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1, kernel: int = 3) -> nn.Sequential:
    padding = dilation * (kernel // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding, dilation, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))  # fmt: skip


class FPN(nn.Module):
    """A 4-stage backbone with a feature pyramid: top-down ``F.interpolate(size=...)`` + lateral 1x1."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), out: int = 64) -> None:
        super().__init__()
        stages, cin = [], 3
        for i, w in enumerate(widths):
            stages.append(nn.Sequential(conv_bn_relu(cin, w, stride=4 if i == 0 else 2), conv_bn_relu(w, w)))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList(nn.Conv2d(w, out, 1) for w in widths)
        self.smooth = nn.ModuleList(nn.Conv2d(out, out, 3, padding=1) for _ in widths)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)                                                 # (B, C_i, H/2^(i+2), W/2^(i+2))
            features.append(x)
        top = self.lateral[-1](features[-1])                             # (B, F, H/32, W/32)
        outputs = [self.smooth[-1](top)]
        for i in range(len(features) - 2, -1, -1):
            lateral = self.lateral[i](features[i])                       # (B, F, h_i, w_i)
            top = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")  # (B, F, h_i, w_i)
            outputs.insert(0, self.smooth[i](top))                       # (B, F, h_i, w_i)
        return outputs


@register("fpn")
def fpn() -> ZooModel:
    return ZooModel(FPN(), (torch.rand(2, 3, 160, 160),), "B C H W")


class ASPPPooling(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        for module in self:
            x = module(x)                                                # (B, C', 1, 1)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # (B, C', h, w)


class ASPP(nn.Module):
    def __init__(self, cin: int, rates: tuple[int, ...] = (6, 12, 18), cout: int = 64) -> None:
        super().__init__()
        branches = [conv_bn_relu(cin, cout, kernel=1)]
        branches += [conv_bn_relu(cin, cout, dilation=rate) for rate in rates]
        branches.append(ASPPPooling(cin, cout))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(conv_bn_relu(len(branches) * cout, cout, kernel=1), nn.Dropout(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = torch.cat([conv(x) for conv in self.convs], dim=1)         # (B, 5*C', h, w)
        return self.project(res)                                         # (B, C', h, w)


class DeepLabV3(nn.Module):
    """torchvision's DeepLabV3 head (ASPP) on a small dilated backbone (output stride 8)."""

    def __init__(self, classes: int = 21) -> None:
        super().__init__()
        self.backbone = nn.Sequential(conv_bn_relu(3, 32, 2), conv_bn_relu(32, 64, 2), conv_bn_relu(64, 128, 2),
                                      conv_bn_relu(128, 128, dilation=2), conv_bn_relu(128, 128, dilation=4))  # fmt: skip
        self.classifier = nn.Sequential(ASPP(128), conv_bn_relu(64, 64), nn.Conv2d(64, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        input_shape = x.shape[-2:]
        features = self.backbone(x)                                      # (B, 128, H/8, W/8)
        out = self.classifier(features)                                  # (B, 21, H/8, W/8)
        return F.interpolate(out, size=input_shape, mode="bilinear", align_corners=False)  # (B, 21, H, W)


@register("deeplab_aspp")
def deeplab_aspp() -> ZooModel:
    return ZooModel(DeepLabV3(), (torch.rand(2, 3, 128, 128),), "B C H W")


# --- generative: VAE, DCGAN, diffusion U-Nets, DiT ------------------------------------------------------------


class ConvVAE(nn.Module):
    def __init__(self, channels: int = 1, latent: int = 32) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(channels, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU())
        self.fc_mu = nn.Linear(64 * 7 * 7, latent)
        self.fc_logvar = nn.Linear(64 * 7 * 7, latent)
        self.fc_decode = nn.Linear(latent, 64 * 7 * 7)
        self.decoder = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                                     nn.ConvTranspose2d(32, channels, 4, 2, 1), nn.Sigmoid())  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.encoder(x).view(x.size(0), -1)                          # (B, 64*7*7)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)                    # (B, Z)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)          # (B, Z)
        h = self.fc_decode(z).view(-1, 64, 7, 7)                         # (B, 64, 7, 7)
        return self.decoder(h), mu, logvar                               # (B, 1, 28, 28)


@register("conv_vae")
def conv_vae() -> ZooModel:
    return ZooModel(ConvVAE(), (torch.rand(64, 1, 28, 28),), "B C H W")


@register("autoencoder_kl", "diffusers")
def autoencoder_kl() -> ZooModel:
    from diffusers import AutoencoderKL

    model = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                          up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(32, 64), latent_channels=4,
                          norm_num_groups=8, layers_per_block=1)  # fmt: skip
    return ZooModel(model, {"sample": torch.rand(2, 3, 64, 64)}, {"sample": "B C H W"})


class DCGANGenerator(nn.Module):
    def __init__(self, nz: int = 100, ngf: int = 32, channels: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False), nn.Tanh(),
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)                                              # (B, 3, 64, 64)


@register("dcgan_generator")
def dcgan_generator() -> ZooModel:
    return ZooModel(DCGANGenerator(), (torch.randn(16, 100, 1, 1),), "B Z _ _")


@register("unet2d_diffusion", "diffusers")
def unet2d_diffusion() -> ZooModel:
    from diffusers import UNet2DModel

    model = UNet2DModel(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(32, 64, 64),
                        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), norm_num_groups=8)  # fmt: skip
    return ZooModel(model, {"sample": torch.rand(2, 3, 32, 32), "timestep": torch.tensor([10, 500])},
                    {"sample": "B C H W"})  # fmt: skip


@register("unet2d_condition", "diffusers")
def unet2d_condition() -> ZooModel:
    from diffusers import UNet2DConditionModel

    model = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                                 block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                 attention_head_dim=8, norm_num_groups=8)  # fmt: skip
    inputs = {"sample": torch.rand(2, 4, 16, 16), "timestep": torch.tensor([10, 500]),
              "encoder_hidden_states": torch.rand(2, 7, 32)}  # fmt: skip
    return ZooModel(model, inputs, {"sample": "B C H W", "encoder_hidden_states": "B S E"})


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)             # (B, N, D)


class TimestepEmbedder(nn.Module):
    def __init__(self, dim: int, frequency_size: int = 256) -> None:
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(nn.Linear(frequency_size, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor, max_period: int = 10000) -> torch.Tensor:
        half = self.frequency_size // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32, device=t.device) / half)  # (F/2,)
        args = t[:, None].float() * freqs[None]                          # (B, F/2)
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, F)
        return self.mlp(embedding)                                       # (B, D)


class DiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)  # 6 x (B, D)
        h = modulate(self.norm1(x), shift_msa, scale_msa)                # (B, N, D)
        x = x + gate_msa.unsqueeze(1) * self.attn(h, h, h, need_weights=False)[0]  # (B, N, D)
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))  # (B, N, D)


class DiT(nn.Module):
    """facebookresearch/DiT's layout: patchify, adaLN-Zero blocks, unpatchify with einsum."""

    def __init__(self, size: int = 32, patch: int = 4, channels: int = 4, dim: int = 192, depth: int = 6, heads: int = 3,
                 classes: int = 1000) -> None:  # fmt: skip
        super().__init__()
        self.patch, self.channels = patch, channels
        self.x_embedder = nn.Conv2d(channels, dim, patch, patch)
        self.t_embedder = TimestepEmbedder(dim)
        self.y_embedder = nn.Embedding(classes + 1, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, (size // patch) ** 2, dim), requires_grad=False)
        self.blocks = nn.ModuleList(DiTBlock(dim, heads) for _ in range(depth))
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.adaLN_final = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, patch * patch * channels)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        c, p = self.channels, self.patch
        h = w = int(x.shape[1] ** 0.5)
        x = x.reshape(x.shape[0], h, w, p, p, c)                         # (B, h, w, p, p, C)
        x = torch.einsum("nhwpqc->nchpwq", x)                            # (B, C, h, p, w, p)
        return x.reshape(x.shape[0], c, h * p, w * p)                    # (B, C, H, W)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = self.x_embedder(x).flatten(2).transpose(1, 2) + self.pos_embed  # (B, N, D)
        c = self.t_embedder(t) + self.y_embedder(y)                      # (B, D)
        for block in self.blocks:
            x = block(x, c)                                              # (B, N, D)
        shift, scale = self.adaLN_final(c).chunk(2, dim=1)               # 2 x (B, D)
        x = self.linear(modulate(self.norm_final(x), shift, scale))      # (B, N, p*p*C)
        return self.unpatchify(x)                                        # (B, C, H, W)


@register("dit")
def dit() -> ZooModel:
    return ZooModel(DiT(), (torch.rand(2, 4, 32, 32), torch.randint(0, 1000, (2,)), torch.randint(0, 1000, (2,))),
                    {"x": "B C H W"})  # fmt: skip


@register("dit_diffusers", "diffusers")
def dit_diffusers() -> ZooModel:
    from diffusers import DiTTransformer2DModel

    model = DiTTransformer2DModel(num_attention_heads=4, attention_head_dim=32, in_channels=4, num_layers=4, sample_size=16,
                                  patch_size=2, num_embeds_ada_norm=1000)  # fmt: skip
    inputs = {"hidden_states": torch.rand(4, 4, 16, 16), "timestep": torch.tensor([1, 10, 100, 999]),
              "class_labels": torch.randint(0, 1000, (4,))}  # fmt: skip
    return ZooModel(model, inputs, {"hidden_states": "B C H W"})


# --- language: GPT, LLaMA, BERT, T5, BART, LSTM/GRU, nn.Transformer ----------------------------------------


@register("gpt2_hf", "transformers")
def gpt2_hf() -> ZooModel:
    from transformers import GPT2Config, GPT2Model

    config = GPT2Config(n_layer=4, n_embd=128, n_head=4, vocab_size=1000, n_positions=256, bos_token_id=0, eos_token_id=0)
    return ZooModel(GPT2Model(config), {"input_ids": tokens(4, 128)}, {"input_ids": "B T"})


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.n_head, self.n_embd = n_head, n_embd
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)              # 3 x (B, T, C)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)     # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)                 # (B, T, C)
        return self.c_proj(y)                                            # (B, T, C)


class NanoBlock(nn.Module):
    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))                                  # (B, T, C)
        return x + self.mlp(self.ln_2(x))                                # (B, T, C)


class NanoGPT(nn.Module):
    """karpathy/nanoGPT's layout: tied embeddings, SDPA with ``is_causal``, logits of the last token."""

    def __init__(self, vocab: int = 1000, block_size: int = 256, n_layer: int = 4, n_head: int = 4, n_embd: int = 128) -> None:
        super().__init__()
        self.block_size = block_size
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(vocab, n_embd), "wpe": nn.Embedding(block_size, n_embd), "drop": nn.Dropout(0.0),
            "h": nn.ModuleList(NanoBlock(n_embd, n_head) for _ in range(n_layer)), "ln_f": nn.LayerNorm(n_embd),
        })  # fmt: skip
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.transformer.wte.weight = self.lm_head.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        b, t = idx.size()
        assert t <= self.block_size, f"Cannot forward sequence of length {t}, block size is only {self.block_size}"
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)   # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)                                                 # (B, T, C)
        x = self.transformer.ln_f(x)                                     # (B, T, C)
        return self.lm_head(x[:, [-1], :])                               # (B, 1, V)


@register("nanogpt")
def nanogpt() -> ZooModel:
    return ZooModel(NanoGPT(), (tokens(4, 128),), "B T")


@register("small_gpt")
def small_gpt() -> ZooModel:
    from models import SmallGPT

    return ZooModel(SmallGPT(), (tokens(8, 64),), "B T")


@register("llama_hf", "transformers")
def llama_hf() -> ZooModel:
    from transformers import LlamaConfig, LlamaModel

    config = LlamaConfig(hidden_size=128, intermediate_size=344, num_hidden_layers=4, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=1000, max_position_embeddings=256)  # fmt: skip
    return ZooModel(LlamaModel(config), {"input_ids": tokens(4, 128)}, {"input_ids": "B T"})


@register("llama_local")
def llama_local() -> ZooModel:
    from bench_symbolic import Llama

    model = Llama(vocab=1000, dim=128, layers=4, heads=4, kv_heads=2, hidden=344)
    return ZooModel(model, (tokens(4, 128),), "B T")


def llama_meta(layers: int) -> ZooModel:
    """The LLaMA-7B layout (d 4096, 32 heads, 8 KV heads) on ``meta``: no memory, no compute."""
    from bench_symbolic import Llama

    with torch.device("meta"):
        model = Llama(layers=layers)
    return ZooModel(model, (torch.empty(2, 256, dtype=torch.long, device="meta"),), "B T")


@register("llama_meta_2", group="depth")
def llama_meta_2() -> ZooModel:
    return llama_meta(2)


@register("llama_meta_32", group="depth")
def llama_meta_32() -> ZooModel:
    return llama_meta(32)


@register("bert_hf", "transformers")
def bert_hf() -> ZooModel:
    from transformers import BertConfig, BertModel

    config = BertConfig(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512, vocab_size=1000)
    ids = tokens(4, 128)
    return ZooModel(BertModel(config), {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
                    {"input_ids": "B T", "attention_mask": "B T"})  # fmt: skip


@register("t5_hf", "transformers")
def t5_hf() -> ZooModel:
    from transformers import T5Config, T5Model

    config = T5Config(d_model=128, d_ff=256, d_kv=32, num_layers=2, num_decoder_layers=2, num_heads=4, vocab_size=1000)
    return ZooModel(T5Model(config), {"input_ids": tokens(4, 96), "decoder_input_ids": tokens(4, 32)},
                    {"input_ids": "B S", "decoder_input_ids": "B T"})  # fmt: skip


@register("bart_hf", "transformers")
def bart_hf() -> ZooModel:
    from transformers import BartConfig, BartModel

    config = BartConfig(d_model=128, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                        decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256, vocab_size=1000,
                        max_position_embeddings=256)  # fmt: skip
    return ZooModel(BartModel(config), {"input_ids": tokens(4, 96), "decoder_input_ids": tokens(4, 32)},
                    {"input_ids": "B S", "decoder_input_ids": "B T"})  # fmt: skip


class PositionalEncoding(nn.Module):
    def __init__(self, dim: int, max_len: int = 512) -> None:
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)                    # (L, 1)
        div_term = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))  # (D/2,)
        pe = torch.zeros(1, max_len, dim)                                # (1, L, D)
        pe[0, :, 0::2] = torch.sin(position * div_term)
        pe[0, :, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[:, : x.size(1)]                               # (B, T, D)


class Seq2SeqTransformer(nn.Module):
    """The PyTorch translation tutorial's model: ``nn.Transformer`` with a causal target mask."""

    def __init__(self, vocab: int = 1000, dim: int = 128, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.src_embed = nn.Embedding(vocab, dim)
        self.tgt_embed = nn.Embedding(vocab, dim)
        self.positional = PositionalEncoding(dim)
        self.transformer = nn.Transformer(dim, heads, layers, layers, 4 * dim, dropout=0.1, batch_first=True)
        self.generator = nn.Linear(dim, vocab)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(tgt.size(1))  # (T, T)
        src_emb = self.positional(self.src_embed(src))                   # (B, S, D)
        tgt_emb = self.positional(self.tgt_embed(tgt))                   # (B, T, D)
        out = self.transformer(src_emb, tgt_emb, tgt_mask=tgt_mask)      # (B, T, D)
        return self.generator(out)                                       # (B, T, V)


@register("seq2seq_transformer", "torch")
def seq2seq_transformer() -> ZooModel:
    return ZooModel(Seq2SeqTransformer(), (tokens(4, 64), tokens(4, 32)), {"src": "B S", "tgt": "B T"})


class LSTMClassifier(nn.Module):
    def __init__(self, vocab: int = 1000, dim: int = 128, hidden: int = 128, classes: int = 5) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, classes)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        embedded = self.embedding(text)                                  # (B, T, E)
        output, (hidden, cell) = self.lstm(embedded)                     # (B, T, 2H), (4, B, H)
        hidden = torch.cat((hidden[-2], hidden[-1]), dim=1)              # (B, 2H)
        return self.fc(hidden)                                           # (B, 5)


@register("lstm_classifier")
def lstm_classifier() -> ZooModel:
    return ZooModel(LSTMClassifier(), (tokens(8, 64),), "B T")


class AttnDecoderGRU(nn.Module):
    """The PyTorch seq2seq tutorial's Bahdanau-attention GRU decoder, with teacher forcing."""

    def __init__(self, vocab: int, hidden: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.Wa, self.Ua, self.Va = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 1)
        self.gru = nn.GRU(2 * hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def step(self, token: torch.Tensor, hidden: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = self.embedding(token)                                 # (B, 1, H)
        query = hidden.permute(1, 0, 2)                                  # (B, 1, H)
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))     # (B, S, 1)
        weights = F.softmax(scores.squeeze(2).unsqueeze(1), dim=-1)      # (B, 1, S)
        context = torch.bmm(weights, keys)                               # (B, 1, H)
        output, hidden = self.gru(torch.cat((embedded, context), dim=2), hidden)  # (B, 1, H), (1, B, H)
        return self.out(output), hidden                                  # (B, 1, V)

    def forward(self, keys: torch.Tensor, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        outputs = []
        for i in range(target.size(1)):
            output, hidden = self.step(target[:, i].unsqueeze(1), hidden, keys)  # (B, 1, V)
            outputs.append(output)
        return F.log_softmax(torch.cat(outputs, dim=1), dim=-1)          # (B, T, V)


class GRUSeq2Seq(nn.Module):
    def __init__(self, vocab: int = 1000, hidden: int = 128) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.encoder = nn.GRU(hidden, hidden, batch_first=True)
        self.decoder = AttnDecoderGRU(vocab, hidden)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        keys, hidden = self.encoder(self.embedding(src))                 # (B, S, H), (1, B, H)
        return self.decoder(keys, hidden, tgt)                           # (B, T, V)


@register("gru_seq2seq_attention")
def gru_seq2seq_attention() -> ZooModel:
    return ZooModel(GRUSeq2Seq(), (tokens(8, 32), tokens(8, 12)), {"src": "B S", "tgt": "B T"})


# --- multimodal and audio: CLIP, Whisper, wav2vec 2.0, 1D convs, point clouds -------------------------------------


@register("clip_hf", "transformers")
def clip_hf() -> ZooModel:
    from transformers import CLIPConfig, CLIPModel

    text = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 512,
            "vocab_size": 1000, "max_position_embeddings": 77, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}  # fmt: skip
    vision = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 512,
              "image_size": 96, "patch_size": 16}  # fmt: skip
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=64))
    inputs = {"input_ids": tokens(4, 32), "pixel_values": torch.rand(4, 3, 96, 96)}
    return ZooModel(model, inputs, {"input_ids": "N T", "pixel_values": "B C H W"})


@register("whisper_hf", "transformers")
def whisper_hf() -> ZooModel:
    from transformers import WhisperConfig, WhisperModel

    config = WhisperConfig(d_model=128, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                           decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256, vocab_size=1000,
                           num_mel_bins=80, max_source_positions=250, max_target_positions=64, pad_token_id=0,
                           bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)  # fmt: skip
    inputs = {"input_features": torch.rand(2, 80, 500), "decoder_input_ids": tokens(2, 16)}
    return ZooModel(WhisperModel(config), inputs, {"input_features": "B M L", "decoder_input_ids": "B T"})


@register("wav2vec2_hf", "transformers")
def wav2vec2_hf() -> ZooModel:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
                            conv_dim=(64,) * 7, num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=4)  # fmt: skip
    return ZooModel(Wav2Vec2Model(config), {"input_values": torch.rand(2, 16000)}, {"input_values": "B L"})


class M5(nn.Module):
    """The torchaudio speech-commands tutorial's 1D conv net on raw waveforms."""

    def __init__(self, n_input: int = 1, n_output: int = 35, stride: int = 16, n_channel: int = 32) -> None:
        super().__init__()
        self.conv1, self.bn1, self.pool1 = nn.Conv1d(n_input, n_channel, 80, stride), nn.BatchNorm1d(n_channel), nn.MaxPool1d(4)
        self.conv2, self.bn2, self.pool2 = nn.Conv1d(n_channel, n_channel, 3), nn.BatchNorm1d(n_channel), nn.MaxPool1d(4)
        self.conv3, self.bn3, self.pool3 = nn.Conv1d(n_channel, 2 * n_channel, 3), nn.BatchNorm1d(2 * n_channel), nn.MaxPool1d(4)
        self.conv4, self.bn4, self.pool4 = nn.Conv1d(2 * n_channel, 2 * n_channel, 3), nn.BatchNorm1d(2 * n_channel), nn.MaxPool1d(4)
        self.fc1 = nn.Linear(2 * n_channel, n_output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(F.relu(self.bn1(self.conv1(x))))                  # (B, 32, L1)
        x = self.pool2(F.relu(self.bn2(self.conv2(x))))                  # (B, 32, L2)
        x = self.pool3(F.relu(self.bn3(self.conv3(x))))                  # (B, 64, L3)
        x = self.pool4(F.relu(self.bn4(self.conv4(x))))                  # (B, 64, L4)
        x = F.avg_pool1d(x, x.shape[-1])                                 # (B, 64, 1)
        x = self.fc1(x.permute(0, 2, 1))                                 # (B, 1, 35)
        return F.log_softmax(x, dim=2)                                   # (B, 1, 35)


@register("audio_m5")
def audio_m5() -> ZooModel:
    return ZooModel(M5(), (torch.rand(16, 1, 16000),), "B C L")


class TemporalBlock(nn.Module):
    """locuslab/TCN: dilated causal convs, the padding chopped off the end."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.chomp = (kernel - 1) * dilation
        self.conv1 = nn.Conv1d(cin, cout, kernel, padding=self.chomp, dilation=dilation)
        self.conv2 = nn.Conv1d(cout, cout, kernel, padding=self.chomp, dilation=dilation)
        self.downsample = nn.Conv1d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x)[:, :, : -self.chomp].contiguous())   # (B, C', L)
        out = F.relu(self.conv2(out)[:, :, : -self.chomp].contiguous())  # (B, C', L)
        res = x if self.downsample is None else self.downsample(x)       # (B, C', L)
        return F.relu(out + res)                                         # (B, C', L)


class TCN(nn.Module):
    def __init__(self, cin: int = 8, channels: tuple[int, ...] = (64, 64, 64, 64, 64), kernel: int = 3, classes: int = 10) -> None:
        super().__init__()
        layers, prev = [], cin
        for i, c in enumerate(channels):
            layers.append(TemporalBlock(prev, c, kernel, 2**i))
            prev = c
        self.network = nn.Sequential(*layers)
        self.linear = nn.Linear(prev, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.network(x)                                              # (B, 64, L)
        return self.linear(y[:, :, -1])                                  # (B, 10)


@register("tcn")
def tcn() -> ZooModel:
    return ZooModel(TCN(), (torch.rand(8, 8, 512),), "B C L")


class STN3d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(3, 64, 1), nn.ReLU(), nn.Conv1d(64, 128, 1), nn.ReLU(), nn.Conv1d(128, 512, 1))
        self.fc = nn.Sequential(nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batchsize = x.size()[0]
        x = torch.max(self.conv(x), 2, keepdim=True)[0].view(-1, 512)    # (B, 512)
        iden = torch.eye(3, dtype=x.dtype).view(1, 9).repeat(batchsize, 1)  # (B, 9)
        return (self.fc(x) + iden).view(-1, 3, 3)                        # (B, 3, 3)


class PointNet(nn.Module):
    """fxia22/pointnet.pytorch's classifier: an input transform, shared MLPs, max over points."""

    def __init__(self, classes: int = 40) -> None:
        super().__init__()
        self.stn = STN3d()
        self.conv1, self.conv2, self.conv3 = nn.Conv1d(3, 64, 1), nn.Conv1d(64, 128, 1), nn.Conv1d(128, 512, 1)
        self.head = nn.Sequential(nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_pts = x.size()[2]
        trans = self.stn(x)                                              # (B, 3, 3)
        x = torch.bmm(x.transpose(2, 1), trans).transpose(2, 1)          # (B, 3, N)
        x = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))        # (B, 512, N)
        assert x.size(2) == n_pts
        x = torch.max(x, 2, keepdim=True)[0].view(-1, 512)               # (B, 512)
        return F.log_softmax(self.head(x), dim=1)                        # (B, 40)


@register("pointnet")
def pointnet() -> ZooModel:
    return ZooModel(PointNet(), (torch.rand(8, 3, 512),), "B C N")


def zoo_names(group: str = "zoo") -> list[str]:
    return [name for name, entry in ZOO.items() if entry.group == group]
