"""A U-Net decoder step: upsample, concatenate the encoder's features, conv.

Planted: the conv was built for the upsampled channels only, not with the skip's added.

Dims: B batch, C channels, H and W height and width.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class UpBlock(nn.Module):
    def __init__(self, in_ch=64, skip_ch=32, out_ch=32):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2)
        self.conv = nn.Conv2d(out_ch, out_ch, 3, padding=1)

    def forward(self, x, skip):
        x = self.up(x)                       # (B, 32, 2*H, 2*W)
        x = torch.cat([x, skip], dim=1)      # (B, 64, 2*H, 2*W)
        return F.relu(self.conv(x))          # planted


def main():
    B, H, W = 2, 8, 8
    x = torch.rand(B, 64, H, W, device=DEVICE)             # (B, 64, H, W)
    skip = torch.rand(B, 32, 2 * H, 2 * W, device=DEVICE)  # (B, 32, 2*H, 2*W)
    block = UpBlock().to(DEVICE)
    y = block(x, skip)                                     # (B, 32, 2*H, 2*W)
    print(f"y.shape {y.shape}")


if __name__ == "__main__":
    main()
