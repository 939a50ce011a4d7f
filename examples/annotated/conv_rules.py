"""conv_rules.py with jaxtyping hints: same padding keeps (H, W), stride s divides them,
upsampling doubles them. `H//{self.stride}` reads the stride from the module."""

import torch
import torch.nn as nn
from jaxtyping import Float
from torch import Tensor

DEVICE = torch.device("cpu")

Image = Float[Tensor, "B C H W"]
Smaller = Float[Tensor, "B C _ _"]  # "_": any size, not bound (each block checks its own)
Doubled = Float[Tensor, "B C H*2 W*2"]


class SameConv(nn.Module):
    """Rule 1: odd kernel, padding = (k - 1) // 2, stride 1."""

    def __init__(self, channels, kernel_size=3):
        super().__init__()
        assert kernel_size % 2 == 1, "same padding needs an odd kernel_size"
        self.conv = nn.Conv2d(channels, channels, kernel_size, stride=1, padding=(kernel_size - 1) // 2)

    def forward(self, x: Image) -> Image:
        return self.conv(x)  # (B, C, H, W)


class DownConv(nn.Module):
    """Rule 2: kernel 3, padding 1, stride s. H and W must be divisible by s."""

    def __init__(self, channels, stride=2):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1)

    def forward(self, x: Image) -> Float[Tensor, "B C H//{self.stride} W//{self.stride}"]:
        return self.conv(x)  # (B, C, H//s, W//s)


class UpsampleConv(nn.Module):
    """Upsample by 2 (nearest), then a same-padding 3x3 conv to mix the copies."""

    def __init__(self, channels):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: Image) -> Doubled:
        x = self.up(x)       # (B, C, H*2, W*2)
        return self.conv(x)  # (B, C, H*2, W*2)


class TransposeUpConv(nn.Module):
    """Learned upsampling: ConvTranspose2d with kernel 2, stride 2."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.ConvTranspose2d(channels, channels, kernel_size=2, stride=2)

    def forward(self, x: Image) -> Doubled:
        return self.conv(x)  # (B, C, H*2, W*2)


class ConvRules(nn.Module):
    """The four blocks side by side on one image."""

    def __init__(self, channels):
        super().__init__()
        self.same = SameConv(channels, kernel_size=5)
        self.down2 = DownConv(channels, stride=2)
        self.down4 = DownConv(channels, stride=4)
        self.up = UpsampleConv(channels)
        self.up_t = TransposeUpConv(channels)

    def forward(self, x: Image) -> tuple[Image, Smaller, Smaller, Doubled, Doubled]:
        return self.same(x), self.down2(x), self.down4(x), self.up(x), self.up_t(x)


def conv_rules():
    B, C, H, W = 8, 3, 128, 128
    x = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    model = ConvRules(C).to(DEVICE)
    outputs = model(x)                         # (B, C, H, W), (B, C, H//2, W//2), ...
    print([tuple(y.shape) for y in outputs])


def main():
    conv_rules()


if __name__ == "__main__":
    main()
