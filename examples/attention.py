"""Multi-head self-attention, using transpose to treat (B, h) as the "list" dims.

From "Essential PyTorch" (for later): batch and heads are list-like dims, the last
two dims are the content that `@` multiplies.

Dims: B batch, N tokens (65 = 4*4 patches of a 128x128 image with patch 32, plus
the class token), D = dim, h = heads, d = head_dim = D // h.
"""

import torch
import torch.nn as nn

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

    def forward(self, x):
        """
        h = heads, d = head_dim
        """
        B, N, D = x.shape
        h, d = self.heads, self.head_dim
        qkv = self.qkv(x)                                         # (B, N, 3*D)
        q = qkv[..., :D].view(B, N, h, d).transpose(1, 2)         # (B, h, N, d)
        k = qkv[..., D : 2 * D].view(B, N, h, d).transpose(1, 2)  # (B, h, N, d)
        v = qkv[..., 2 * D :].view(B, N, h, d).transpose(1, 2)    # (B, h, N, d)
        attn = (q @ k.transpose(-2, -1)) * self.scale             # (B, h, N, N)
        attn = attn.softmax(dim=-1)                               # (B, h, N, N)
        out = attn @ v                                            # (B, h, N, d)
        out = out.transpose(1, 2).reshape(B, N, D)                # (B, N, D)
        return self.proj(out)                                     # (B, N, D)


def attention():
    """
    Linear, view, transpose, @, softmax, reshape
    """
    B, N, D = 8, 65, 512
    heads = 8
    x = torch.rand(B, N, D, device=DEVICE)  # (B, N, D)

    model = MultiHeadSelfAttention(dim=D, heads=heads).to(DEVICE)
    y = model(x)                            # (B, N, D)
    print(f"x.shape {x.shape}")
    print(f"y.shape {y.shape}")


def main():
    attention()


if __name__ == "__main__":
    main()
