"""Turn an image tensor (B, C, H, W) into image tokens (B, H*W, C).

From "Essential PyTorch": torch.rand, shape, flatten, transpose, @.
"""

import torch

DEVICE = torch.device("cpu")


def tokenize_image():
    """
    torch.rand, shape, flatten, transpose
    """
    B, C, H, W = 8, 512, 4, 4
    image = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)

    h = image.flatten(2)                           # (B, C, H*W)
    image_toks = h.transpose(1, 2)                 # (B, H*W, C)

    # Tokens are now the second dim, so h @ image_toks is a batched matmul.
    channel_gram = h @ image_toks                  # (B, C, C)

    print(f"image.shape {image.shape}")
    print(f"h.shape {h.shape}")
    print(f"image_toks.shape {image_toks.shape}")
    print(f"channel_gram.shape {channel_gram.shape}")


def main():
    tokenize_image()


if __name__ == "__main__":
    main()
