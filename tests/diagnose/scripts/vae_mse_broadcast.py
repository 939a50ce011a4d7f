"""A value head trained with F.mse_loss.

Planted (raises nothing, torch only warns): the prediction is (B, 1), the target (B,).

Dims: B batch, D width.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class ValueHead(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.fc1 = nn.Linear(dim, 32)
        self.fc2 = nn.Linear(32, 1)

    def forward(self, h):
        return self.fc2(torch.tanh(self.fc1(h)))  # (B, 1)


def main():
    B, D = 8, 16
    h = torch.rand(B, D, device=DEVICE)        # (B, D)
    returns = torch.rand(B, device=DEVICE)     # (B,)
    head = ValueHead(D).to(DEVICE)
    value = head(h)                            # (B, 1)
    loss = F.mse_loss(value, returns)          # planted
    print(f"loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
