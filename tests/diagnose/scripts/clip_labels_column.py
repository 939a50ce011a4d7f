"""A linear probe on CLIP-style image features.

Planted: the labels come as a (B, 1) column, cross_entropy wants class indices (B,).

Dims: B batch, D feature width, K classes.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class LinearProbe(nn.Module):
    def __init__(self, dim=64, classes=10):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, classes)

    def forward(self, feats):
        feats = feats / feats.norm(dim=-1, keepdim=True)  # (B, D)
        return self.fc(self.norm(feats))                  # (B, K)


def main():
    B, D, K = 8, 64, 10
    feats = torch.randn(B, D, device=DEVICE)               # (B, D)
    labels = torch.randint(0, K, (B, 1), device=DEVICE)    # (B, 1)
    probe = LinearProbe(D, K).to(DEVICE)
    logits = probe(feats)                                  # (B, K)
    loss = F.cross_entropy(logits, labels)                 # planted
    print(f"loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
