"""A ViT MLP head that normalizes tokens with BatchNorm1d.

Planted: nn.BatchNorm1d(D) takes (B, D, N), the tokens are (B, N, D).

Dims: B batch, N tokens, D width.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class TokenMLP(nn.Module):
    def __init__(self, dim=32, hidden=64):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        h = self.fc1(x)                # (B, N, 2*D)
        h = self.bn(h)                 # planted
        return x + self.fc2(h.relu())  # (B, N, D)


def main():
    B, N, D = 4, 17, 32
    tokens = torch.rand(B, N, D, device=DEVICE)  # (B, N, D)
    mlp = TokenMLP(D).to(DEVICE)
    out = mlp(tokens)                            # (B, N, D)
    print(f"out.shape {out.shape}")


if __name__ == "__main__":
    main()
