"""DiT final layer: adaLN modulation, then a learned scale made fresh in the forward.

Planted: torch.ones(...) in the forward has no device=, the model runs on DEVICE.

Dims: B batch, N tokens, D width, P = patch * patch * out_channels.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("meta")  # stands in for "cuda" on a machine without a GPU


class FinalLayer(nn.Module):
    def __init__(self, dim=32, patch_dim=48):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.adaLN = nn.Linear(dim, 2 * dim)
        self.linear = nn.Linear(dim, patch_dim)

    def forward(self, x, c):
        shift, scale = self.adaLN(c).chunk(2, dim=-1)          # (B, D) x2
        ones = torch.ones(x.shape[-1])                         # (D,)
        x = self.norm(x) * (ones + scale[:, None]) + shift[:, None]  # planted
        return self.linear(x)                                  # (B, N, P)


def main():
    B, N, D = 2, 16, 32
    x = torch.rand(B, N, D, device=DEVICE)  # (B, N, D)
    c = torch.rand(B, D, device=DEVICE)     # (B, D)
    layer = FinalLayer(D).to(DEVICE)
    out = layer(x, c)                       # (B, N, P)
    print(f"out.shape {out.shape}")


if __name__ == "__main__":
    main()
