"""mlp.py with jaxtyping hints: every token keeps its width D."""

import torch
import torch.nn as nn
from jaxtyping import Float
from torch import Tensor

DEVICE = torch.device("cpu")


class MLP(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, dim),
        )

    def forward(self, x: Float[Tensor, "B P D"]) -> Float[Tensor, "B P D"]:
        return self.net(x)  # (B, P, D)


def mlp():
    B, P, D = 8, 77, 512
    x = torch.rand(B, P, D, device=DEVICE)  # (B, P, D)
    model = MLP(dim=D, hidden_dim=2048).to(DEVICE)
    y = model(x)                            # (B, P, D)
    print(f"y.shape {y.shape}")


def main():
    mlp()


if __name__ == "__main__":
    main()
