"""GPT-style attention written out by hand, with a padding mask.

Planted: the padding mask (B, N) meets the scores (B, h, N, N) in masked_fill.

Dims: B batch, N tokens, D width, h heads, d = D // h.
"""

import math

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class CausalSelfAttention(nn.Module):
    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)

    def forward(self, x, pad_mask):
        B, N, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=2)                        # (B, N, D) x3
        q = q.view(B, N, self.heads, self.head_dim).transpose(1, 2)     # (B, h, N, d)
        k = k.view(B, N, self.heads, self.head_dim).transpose(1, 2)     # (B, h, N, d)
        v = v.view(B, N, self.heads, self.head_dim).transpose(1, 2)     # (B, h, N, d)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)      # (B, h, N, N)
        att = att.masked_fill(pad_mask == 0, float("-inf"))             # planted
        att = att.softmax(dim=-1)                                       # (B, h, N, N)
        y = (att @ v).transpose(1, 2).reshape(B, N, D)                  # (B, N, D)
        return self.c_proj(y)                                           # (B, N, D)


def main():
    B, N, D = 2, 8, 32
    x = torch.rand(B, N, D, device=DEVICE)                             # (B, N, D)
    pad_mask = torch.ones(B, N, dtype=torch.long, device=DEVICE)       # (B, N)
    pad_mask[1, 6:] = 0
    attn = CausalSelfAttention(D).to(DEVICE)
    y = attn(x, pad_mask)                                              # (B, N, D)
    print(f"y.shape {y.shape}")


if __name__ == "__main__":
    main()
