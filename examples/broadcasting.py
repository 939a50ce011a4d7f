"""Broadcasting: compare dims right to left; sizes must be equal or one of them 1.

From "Essential PyTorch": (8, 1, 10) + (1, 6, 10) + (8, 6, 1) -> (8, 6, 10).
"""

import torch

DEVICE = torch.device("cpu")


def broadcasting():
    x1 = torch.rand(8, 1, 10, device=DEVICE)  # (8, 1, 10)
    x2 = torch.rand(1, 6, 10, device=DEVICE)  # (1, 6, 10)
    x3 = torch.rand(8, 6, 1, device=DEVICE)   # (8, 6, 1)
    y = x1 + x2 + x3                          # (8, 6, 10)
    print(f"x1.shape {x1.shape}")
    print(f"x2.shape {x2.shape}")
    print(f"x3.shape {x3.shape}")
    print(f"y.shape {y.shape}")


def main():
    broadcasting()


if __name__ == "__main__":
    main()
