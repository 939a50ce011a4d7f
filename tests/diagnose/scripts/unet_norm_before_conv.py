"""A U-Net up block: upsample, concatenate the skip connection, conv, normalize.

Planted: the GroupNorm was built for the conv's output channels but runs on its input.

Dims: B batch, C channels, H and W height and width.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class Up(nn.Module):
    def __init__(self, in_ch, skip_ch, out_ch):
        super().__init__()
        self.norm = nn.GroupNorm(8, out_ch)
        self.conv = nn.Conv2d(in_ch + skip_ch, out_ch, 3, padding=1)

    def forward(self, x, skip):
        x = F.interpolate(x, scale_factor=2, mode="nearest")  # (B, C, 2*H, 2*W)
        x = torch.cat([x, skip], dim=1)                       # (B, C + S, 2*H, 2*W)
        x = self.conv(F.silu(self.norm(x)))                   # planted
        return x


def main():
    B, H, W = 2, 8, 8
    x = torch.rand(B, 64, H, W, device=DEVICE)               # (B, 64, H, W)
    skip = torch.rand(B, 32, 2 * H, 2 * W, device=DEVICE)    # (B, 32, 2*H, 2*W)
    up = Up(64, 32, 32).to(DEVICE)
    y = up(x, skip)                                          # (B, 32, 2*H, 2*W)
    print(f"y.shape {y.shape}")


if __name__ == "__main__":
    main()
