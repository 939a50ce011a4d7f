"""A small U-Net encoder whose levels are kept in a Python list.

Planted (raises nothing): a plain list does not register the blocks: their parameters are not
in model.parameters() (the optimizer never sees them) and model.to() does not move them.

Dims: B batch, C channels, H and W height and width.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class ConvBlock(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm = nn.GroupNorm(8, out_ch)

    def forward(self, x):
        return F.silu(self.norm(self.conv(x)))  # (B, C, H, W)


class Encoder(nn.Module):
    def __init__(self, in_ch=3, widths=(16, 32, 64)):
        super().__init__()
        chans = [in_ch, *widths]
        self.blocks = [ConvBlock(a, b) for a, b in zip(chans, chans[1:])]  # planted

    def forward(self, x):
        for block in self.blocks:
            x = F.avg_pool2d(block(x), 2)                                  # (B, C, H//2, W//2)
        return x


def main():
    B, C, H, W = 2, 3, 32, 32
    image = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    encoder = Encoder(C).to(DEVICE)
    feats = encoder(image)                         # (B, 64, H//8, W//8)
    print(f"feats.shape {feats.shape}")


if __name__ == "__main__":
    main()
