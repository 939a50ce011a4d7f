"""broadcasting.py with a contract: `#` marks dims that may be 1 and broadcast; the sum has
every dim at full size. (8, 1, 10) + (1, 6, 10) + (8, 6, 1) -> (8, 6, 10)."""

import torch
from jaxtyping import Float
from torch import Tensor

import shapetrace

DEVICE = torch.device("cpu")

Partial = Float[Tensor, "#B #N #C"]


@shapetrace.contract
def combine(x1: Partial, x2: Partial, x3: Partial) -> Float[Tensor, "B N C"]:
    return x1 + x2 + x3  # (B, N, C)


def broadcasting():
    x1 = torch.rand(8, 1, 10, device=DEVICE)  # (8, 1, 10)
    x2 = torch.rand(1, 6, 10, device=DEVICE)  # (1, 6, 10)
    x3 = torch.rand(8, 6, 1, device=DEVICE)   # (8, 6, 1)
    y = combine(x1, x2, x3)                   # (8, 6, 10)
    print(f"y.shape {y.shape}")


def main():
    broadcasting()


if __name__ == "__main__":
    main()
