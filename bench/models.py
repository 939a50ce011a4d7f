"""Hand-written models for the benchmarks (a small ViT, a small GPT: the seeds' style), and a chain of tiny ops."""

from __future__ import annotations

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, causal: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.causal = causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)                           # 3 x (B, N, D)
        q = q.view(B, N, self.heads, D // self.heads).transpose(1, 2)    # (B, h, N, D//h)
        k = k.view(B, N, self.heads, D // self.heads).transpose(1, 2)    # (B, h, N, D//h)
        v = v.view(B, N, self.heads, D // self.heads).transpose(1, 2)    # (B, h, N, D//h)
        att = (q @ k.transpose(-2, -1)) * (D // self.heads) ** -0.5      # (B, h, N, N)
        if self.causal:
            mask = torch.ones(N, N, device=x.device).tril()              # (N, N)
            att = att.masked_fill(mask == 0, float("-inf"))              # (B, h, N, N)
        att = att.softmax(dim=-1)                                        # (B, h, N, N)
        out = (att @ v).transpose(1, 2).reshape(B, N, D)                 # (B, N, D)
        return self.proj(out)                                            # (B, N, D)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, causal: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, causal)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))                                 # (B, N, D)
        return x + self.mlp(self.norm2(x))                               # (B, N, D)


class SmallViT(nn.Module):
    """ViT-Tiny-like: 128x128 images, patch 16, D 192, 6 blocks."""

    def __init__(self, img: int = 128, patch: int = 16, dim: int = 192, depth: int = 6, heads: int = 3) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (img // patch) ** 2 + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        x = self.patch_embed(x).flatten(2).transpose(1, 2)              # (B, N, D)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)     # (B, N + 1, D)
        x = x + self.pos_embed                                          # (B, N + 1, D)
        for block in self.blocks:
            x = block(x)                                                # (B, N + 1, D)
        return self.head(self.norm(x)[:, 0])                            # (B, 10)


class SmallGPT(nn.Module):
    """GPT-2-like: vocab 1000, context 64, D 128, 4 causal blocks."""

    def __init__(self, vocab: int = 1000, ctx: int = 64, dim: int = 128, depth: int = 4, heads: int = 4) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(ctx, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, causal=True) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)                        # (T,)
        x = self.tok(idx) + self.pos(pos)                               # (B, T, D)
        for block in self.blocks:
            x = block(x)                                                # (B, T, D)
        return self.lm_head(self.norm(x))                               # (B, T, V)


CHAIN_STEPS = 300


def op_chain(x: torch.Tensor, w: torch.Tensor, steps: int = CHAIN_STEPS) -> torch.Tensor:
    """``3 * steps`` tiny ops, no module: where a tracer's own cost per op shows."""
    for _ in range(steps):
        x = x + 1          # (4, 4)
        x = torch.relu(x)  # (4, 4)
        x = x @ w          # (4, 4)
    return x
