"""A CLIP-style projection head with a fixed per-channel scale made in __init__.

Planted (raises nothing on the CPU): the scale is a plain tensor attribute; model.to("cuda")
would leave it on the CPU.

Dims: B batch, D width, E embedding width.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class ProjectionHead(nn.Module):
    def __init__(self, dim=32, embed_dim=16):
        super().__init__()
        self.proj = nn.Linear(dim, embed_dim, bias=False)
        self.scale = torch.full((embed_dim,), embed_dim**-0.5)  # (E,)

    def forward(self, feats):
        z = self.proj(feats)                 # (B, E)
        z = z * self.scale                   # planted
        return z / z.norm(dim=-1, keepdim=True)  # (B, E)


def main():
    B, D = 4, 32
    feats = torch.rand(B, D, device=DEVICE)  # (B, D)
    head = ProjectionHead(D).to(DEVICE)
    z = head(feats)                          # (B, E)
    print(f"z.shape {z.shape}")


if __name__ == "__main__":
    main()
