"""A DiT block: attention and MLP, each after its own LayerNorm.

Planted (raises nothing): the MLP branch reuses norm1; norm2's parameters never train.

Dims: B batch, N tokens, D width.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class DiTBlock(nn.Module):
    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)  # planted
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        h = self.norm1(x)                                # (B, N, D)
        x = x + self.attn(h, h, h, need_weights=False)[0]  # (B, N, D)
        x = x + self.mlp(self.norm1(x))                  # (B, N, D)
        return x


def main():
    B, N, D = 2, 16, 32
    x = torch.rand(B, N, D, device=DEVICE)  # (B, N, D)
    block = DiTBlock(D).to(DEVICE)
    y = block(x)                            # (B, N, D)
    print(f"y.shape {y.shape}")


if __name__ == "__main__":
    main()
