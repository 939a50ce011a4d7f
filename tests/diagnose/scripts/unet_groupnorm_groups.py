"""The down path of a small U-Net: each level doubles the channels.

Planted: GroupNorm with 32 groups, built for 48 channels (48 is not a multiple of 32).

Dims: B batch, C channels, H and W height and width.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class Down(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm = nn.GroupNorm(32, out_ch)  # planted

    def forward(self, x):
        x = F.silu(self.norm(self.conv(x)))   # (B, C, H, W)
        return F.avg_pool2d(x, 2)             # (B, C, H//2, W//2)


class Encoder(nn.Module):
    def __init__(self, in_ch=3, widths=(64, 48, 96)):
        super().__init__()
        chans = [in_ch, *widths]
        self.downs = nn.ModuleList([Down(a, b) for a, b in zip(chans, chans[1:])])

    def forward(self, x):
        for down in self.downs:
            x = down(x)                       # (B, C, H, W)
        return x


def main():
    B, C, H, W = 2, 3, 32, 32
    image = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    encoder = Encoder(in_ch=C).to(DEVICE)
    feats = encoder(image)                         # (B, 96, H//8, W//8)
    print(f"feats.shape {feats.shape}")


if __name__ == "__main__":
    main()
