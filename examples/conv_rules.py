"""The two conv rules from "Essential PyTorch", plus upsampling.

1. Same padding with odd kernels: kernel_size in {3, 5, 7}, padding = (k - 1) // 2,
   stride 1 -> H and W unchanged.
2. Downsampling with stride: same padding rule and stride s -> H // s, W // s,
   as long as H and W are divisible by s (e.g. 128 with stride 2 or 4).
3. Upsampling: nn.Upsample(scale_factor=2) or ConvTranspose2d(kernel 2, stride 2)
   -> H * 2, W * 2.

Dims: B batch, C channels, H and W height and width, s = stride.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class SameConv(nn.Module):
    """Rule 1: odd kernel, padding = (k - 1) // 2, stride 1."""

    def __init__(self, channels, kernel_size=3):
        super().__init__()
        assert kernel_size % 2 == 1, "same padding needs an odd kernel_size"
        padding = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(channels, channels, kernel_size, stride=1, padding=padding)

    def forward(self, x):
        B, C, H, W = x.shape
        return self.conv(x)  # (B, C, H, W)


class DownConv(nn.Module):
    """Rule 2: kernel 3, padding 1, stride s. H and W must be divisible by s."""

    def __init__(self, channels, stride=2):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1)

    def forward(self, x):
        """
        s = stride
        """
        B, C, H, W = x.shape
        s = self.stride
        assert H % s == 0 and W % s == 0, "H and W must be divisible by the stride"
        return self.conv(x)  # (B, C, H//s, W//s)


class UpsampleConv(nn.Module):
    """Upsample by 2 (nearest), then a same-padding 3x3 conv to mix the copies."""

    def __init__(self, channels):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x):
        B, C, H, W = x.shape
        x = self.up(x)       # (B, C, H*2, W*2)
        return self.conv(x)  # (B, C, H*2, W*2)


class TransposeUpConv(nn.Module):
    """Learned upsampling: ConvTranspose2d with kernel 2, stride 2."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.ConvTranspose2d(channels, channels, kernel_size=2, stride=2)

    def forward(self, x):
        B, C, H, W = x.shape
        return self.conv(x)  # (B, C, H*2, W*2)


def conv_rules():
    """
    Conv2d same padding, stride-n downsampling, Upsample, ConvTranspose2d
    """
    B, C, H, W = 8, 3, 128, 128
    x = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    print(f"x.shape {x.shape}")

    for k in (3, 5, 7):
        same = SameConv(C, kernel_size=k).to(DEVICE)
        y = same(x)                            # (B, C, H, W)
        print(f"same, kernel_size={k}: y.shape {y.shape}")

    down2 = DownConv(C, stride=2).to(DEVICE)
    x2 = down2(x)                              # (B, C, H//2, W//2)
    print(f"stride 2: x2.shape {x2.shape}")

    down4 = DownConv(C, stride=4).to(DEVICE)
    x4 = down4(x)                              # (B, C, H//4, W//4)
    print(f"stride 4: x4.shape {x4.shape}")

    up = UpsampleConv(C).to(DEVICE)
    u = up(x)                                  # (B, C, H*2, W*2)
    print(f"Upsample: u.shape {u.shape}")

    up_t = TransposeUpConv(C).to(DEVICE)
    t = up_t(x)                                # (B, C, H*2, W*2)
    print(f"ConvTranspose2d: t.shape {t.shape}")


def main():
    conv_rules()


if __name__ == "__main__":
    main()
