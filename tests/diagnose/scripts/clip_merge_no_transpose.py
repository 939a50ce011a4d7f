"""CLIP vision attention that merges the heads back with one reshape.

Planted (raises nothing): (B, h, N, d) reshaped straight to (B, N, D) puts each head's tokens
side by side; the merge is transpose(1, 2).reshape(B, N, D).

Dims: B batch, N tokens, D width, h heads, d = D // h.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class Attention(nn.Module):
    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.heads, self.head_dim)  # (B, N, 3, h, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                        # (B, h, N, d) x3
        att = (q @ k.transpose(-2, -1)) * self.head_dim**-0.5       # (B, h, N, N)
        out = att.softmax(dim=-1) @ v                               # (B, h, N, d)
        out = out.reshape(B, N, D)                                  # planted
        return self.out_proj(out)                                   # (B, N, D)


def main():
    B, N, D = 2, 10, 32
    x = torch.rand(B, N, D, device=DEVICE)  # (B, N, D)
    attn = Attention(D).to(DEVICE)
    y = attn(x)                             # (B, N, D)
    print(f"y.shape {y.shape}")


if __name__ == "__main__":
    main()
