"""A regression head on pooled image features, trained with a hand-written squared error.

Planted (raises nothing): pred is (B, 1), y is (B,): pred - y is (B, B), and .mean() hides it.

Dims: B batch, D feature width.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class Regressor(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        return self.net(x)  # (B, 1)


def main():
    B, D = 8, 16
    x = torch.rand(B, D, device=DEVICE)   # (B, D)
    y = torch.rand(B, device=DEVICE)      # (B,)
    model = Regressor(D).to(DEVICE)
    pred = model(x)                       # (B, 1)
    loss = ((pred - y) ** 2).mean()       # planted
    print(f"loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
