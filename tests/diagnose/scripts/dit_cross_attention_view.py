"""DiT cross-attention: image tokens attend to text tokens.

Planted: the heads of k and v are split with the image token count N; the text has M tokens.
(Splitting as view(B, h, N, d) also scrambles tokens and heads: (B, M, D) is laid out as
(B, M, h, d).)

Dims: B batch, N image tokens, M text tokens, D width, h heads, d = D // h.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class CrossAttention(nn.Module):
    def __init__(self, dim=32, context_dim=24, heads=4):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(context_dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def split_heads(self, t, B, N):
        return t.view(B, self.heads, N, self.head_dim)  # planted

    def forward(self, x, context):
        B, N, D = x.shape
        q = self.to_q(x).view(B, N, self.heads, self.head_dim).transpose(1, 2)  # (B, h, N, d)
        k, v = self.to_kv(context).chunk(2, dim=-1)                             # (B, M, D) x2
        k, v = self.split_heads(k, B, N), self.split_heads(v, B, N)             # (B, h, M, d) x2
        out = F.scaled_dot_product_attention(q, k, v)                           # (B, h, N, d)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))                  # (B, N, D)


def main():
    B, N, M, D = 2, 16, 7, 32
    x = torch.rand(B, N, D, device=DEVICE)         # (B, N, D)
    context = torch.rand(B, M, 24, device=DEVICE)  # (B, M, 24)
    attn = CrossAttention(D).to(DEVICE)
    out = attn(x, context)                         # (B, N, D)
    print(f"out.shape {out.shape}")


if __name__ == "__main__":
    main()
