"""tokenize_image.py as functions with contracts (`@shapetrace.contract`): checked on every
call, inside a trace or not."""

import torch
from jaxtyping import Float
from torch import Tensor

import shapetrace

DEVICE = torch.device("cpu")


@shapetrace.contract
def image_tokens(image: Float[Tensor, "B C H W"]) -> Float[Tensor, "B H*W C"]:
    h = image.flatten(2)       # (B, C, H*W)
    return h.transpose(1, 2)   # (B, H*W, C)


@shapetrace.contract
def channel_gram(tokens: Float[Tensor, "B T C"]) -> Float[Tensor, "B C C"]:
    return tokens.transpose(1, 2) @ tokens  # (B, C, C)


def tokenize_image():
    B, C, H, W = 8, 512, 4, 4
    image = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    tokens = image_tokens(image)                   # (B, H*W, C)
    gram = channel_gram(tokens)                    # (B, C, C)
    print(f"tokens.shape {tokens.shape}")
    print(f"gram.shape {gram.shape}")


def main():
    tokenize_image()


if __name__ == "__main__":
    main()
