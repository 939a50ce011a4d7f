"""A U-Net residual block conditioned on the diffusion timestep.

Planted: the time embedding (B, C) is added to the feature map (B, C, H, W) as is.

Dims: B batch, C channels, H and W height and width, T = time_dim.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / half)  # (T//2,)
    args = t[:, None].float() * freqs[None]                                           # (B, T//2)
    return torch.cat([args.cos(), args.sin()], dim=-1)                                # (B, T)


class ResBlock(nn.Module):
    def __init__(self, ch, time_dim):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, ch)
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, ch)
        self.norm2 = nn.GroupNorm(8, ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x, t_emb):
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C, H, W)
        h = h + self.time_proj(t_emb)          # planted
        h = self.conv2(F.silu(self.norm2(h)))  # (B, C, H, W)
        return x + h                           # (B, C, H, W)


def main():
    B, C, H, W = 4, 32, 16, 16
    time_dim = 64
    x = torch.rand(B, C, H, W, device=DEVICE)            # (B, C, H, W)
    t = torch.randint(0, 1000, (B,), device=DEVICE)      # (B,)
    t_emb = timestep_embedding(t, time_dim)              # (B, T)
    block = ResBlock(C, time_dim).to(DEVICE)
    y = block(x, t_emb)                                  # (B, C, H, W)
    print(f"y.shape {y.shape}")


if __name__ == "__main__":
    main()
