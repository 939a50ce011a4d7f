"""DiT attention with einsum: scores between every pair of image tokens, per head.

Planted: k keeps the (B, N, h, d) layout, the equation reads it as (b, h, m, d).

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
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.heads, self.head_dim)   # (B, N, 3, h, d)
        q, k, v = qkv.unbind(dim=2)                                  # (B, N, h, d) x3
        q, v = q.transpose(1, 2), v.transpose(1, 2)                  # (B, h, N, d) x2
        scores = torch.einsum("bhnd,bhmd->bhnm", q, k)               # planted
        att = (scores * self.head_dim**-0.5).softmax(dim=-1)         # (B, h, N, N)
        out = torch.einsum("bhnm,bhmd->bhnd", att, v)                # (B, h, N, d)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))       # (B, N, D)


def main():
    B, N, D = 2, 16, 32
    tokens = torch.rand(B, N, D, device=DEVICE)  # (B, N, D)
    attn = Attention(D).to(DEVICE)
    out = attn(tokens)                           # (B, N, D)
    print(f"out.shape {out.shape}")


if __name__ == "__main__":
    main()
