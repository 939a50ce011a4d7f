"""nanoGPT-style causal self-attention whose causal mask is made in __init__.

Planted: the mask is a plain tensor attribute, so model.to(DEVICE) leaves it on the CPU.

Dims: B batch, N tokens, D width, h heads, d = D // h.
"""

import math

import torch
import torch.nn as nn

DEVICE = torch.device("meta")  # stands in for "cuda" on a machine without a GPU


class CausalSelfAttention(nn.Module):
    def __init__(self, dim=32, heads=4, max_len=16):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)
        self.mask = torch.ones(max_len, max_len).tril()  # (L, L)

    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=2)                               # (B, N, D) x3
        q = q.view(B, N, self.heads, self.head_dim).transpose(1, 2)            # (B, h, N, d)
        k = k.view(B, N, self.heads, self.head_dim).transpose(1, 2)            # (B, h, N, d)
        v = v.view(B, N, self.heads, self.head_dim).transpose(1, 2)            # (B, h, N, d)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)             # (B, h, N, N)
        att = att.masked_fill(self.mask[:N, :N] == 0, float("-inf"))           # planted
        y = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, N, D)         # (B, N, D)
        return self.c_proj(y)                                                  # (B, N, D)


def main():
    B, N, D = 2, 8, 32
    x = torch.rand(B, N, D, device=DEVICE)     # (B, N, D)
    attn = CausalSelfAttention(D).to(DEVICE)
    y = attn(x)                                # (B, N, D)
    print(f"y.shape {y.shape}")


if __name__ == "__main__":
    main()
