"""GPT self-attention whose heads are split with one view.

Planted (raises nothing): view(B, h, N, d) straight from (B, N, D) mixes tokens into heads;
the split is view(B, N, h, d).transpose(1, 2).

Dims: B batch, N tokens, D width, h heads, d = D // h.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class SelfAttention(nn.Module):
    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)                       # (B, N, D) x3
        q = q.reshape(B, self.heads, N, self.head_dim)               # planted
        k = k.view(B, N, self.heads, self.head_dim).transpose(1, 2)  # (B, h, N, d)
        v = v.view(B, N, self.heads, self.head_dim).transpose(1, 2)  # (B, h, N, d)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, h, N, d)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))       # (B, N, D)


def main():
    B, N, D = 2, 10, 32
    x = torch.rand(B, N, D, device=DEVICE)  # (B, N, D)
    attn = SelfAttention(D).to(DEVICE)
    y = attn(x)                             # (B, N, D)
    print(f"y.shape {y.shape}")


if __name__ == "__main__":
    main()
