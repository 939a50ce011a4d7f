"""attention.py with jaxtyping hints, written as strings (`from __future__ import annotations`):
shapetrace resolves them when it checks the contract.

The heads are split by a helper whose contract is opted in with `@shapetrace.contract`: its
`h` and `d` are read from the module (`{self.heads}`), and it runs in a binding scope of its
own (N and D there are not the caller's).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from jaxtyping import Float
from torch import Tensor

import shapetrace

DEVICE = torch.device("cpu")


class MultiHeadSelfAttention(nn.Module):
    """
    D = dim, h = heads, d = head_dim = D // h
    """

    def __init__(self, dim=512, heads=8):
        super().__init__()
        assert dim % heads == 0, "dim must be divisible by heads"
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    @shapetrace.contract
    def split_heads(self, t: Float[Tensor, "B N D"]) -> Float[Tensor, "B {self.heads} N D//{self.heads}"]:
        B, N, D = t.shape
        return t.view(B, N, self.heads, D // self.heads).transpose(1, 2)  # (B, h, N, d)

    def forward(self, x: Float[Tensor, "B N D"]) -> Float[Tensor, "B N D"]:
        B, N, D = x.shape
        qkv = self.qkv(x)                                   # (B, N, 3*D)
        q = self.split_heads(qkv[..., :D])                  # (B, h, N, d)
        k = self.split_heads(qkv[..., D : 2 * D])           # (B, h, N, d)
        v = self.split_heads(qkv[..., 2 * D :])             # (B, h, N, d)
        attn = (q @ k.transpose(-2, -1)) * self.scale       # (B, h, N, N)
        attn = attn.softmax(dim=-1)                         # (B, h, N, N)
        out = attn @ v                                      # (B, h, N, d)
        out = out.transpose(1, 2).reshape(B, N, D)          # (B, N, D)
        return self.proj(out)                               # (B, N, D)


def attention():
    B, N, D = 8, 65, 512
    x = torch.rand(B, N, D, device=DEVICE)  # (B, N, D)
    model = MultiHeadSelfAttention(dim=D, heads=8).to(DEVICE)
    y = model(x)                            # (B, N, D)
    print(f"y.shape {y.shape}")


def main():
    attention()


if __name__ == "__main__":
    main()
