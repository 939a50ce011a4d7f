"""A ConvNeXt block: depthwise conv, LayerNorm over channels, inverted MLP.

Planted: nn.LayerNorm(C) applied to the channels-first (B, C, H, W) tensor.

Dims: B batch, C channels, H and W height and width.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim=32):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pwconv1 = nn.Conv2d(dim, 4 * dim, 1)
        self.act = nn.GELU()
        self.pwconv2 = nn.Conv2d(4 * dim, dim, 1)

    def forward(self, x):
        h = self.dwconv(x)                          # (B, C, H, W)
        h = self.norm(h)                            # planted
        h = self.pwconv2(self.act(self.pwconv1(h)))  # (B, C, H, W)
        return x + h                                # (B, C, H, W)


def main():
    B, C, H, W = 2, 32, 14, 14
    x = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    block = ConvNeXtBlock(C).to(DEVICE)
    y = block(x)                               # (B, C, H, W)
    print(f"y.shape {y.shape}")


if __name__ == "__main__":
    main()
