"""The transformer MLP block: Linear -> GELU -> Linear, applied to every token.

From "Essential PyTorch": nn.Module, nn.Sequential, nn.Linear.

Dims: B batch, P tokens, D = dim (token width).
"""

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class MLP(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, dim),
        )

    def forward(self, x):
        """
        x: (B, P, D) tokens, D = dim
        """
        return self.net(x)  # (B, P, D)


def mlp():
    """
    nn.Module, nn.Sequential, nn.Linear, nn.GELU
    """
    B, P, D = 8, 77, 512
    x = torch.rand(B, P, D, device=DEVICE)  # (B, P, D)

    model = MLP(dim=D, hidden_dim=2048).to(DEVICE)
    y = model(x)                            # (B, P, D)
    print(f"x.shape {x.shape}")
    print(f"y.shape {y.shape}")


def main():
    mlp()


if __name__ == "__main__":
    main()
