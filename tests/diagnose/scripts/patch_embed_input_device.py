"""The seeds' patch embedding with the image normalization inside, moved to DEVICE; the image
batch is made on the CPU.

Planted: the model is on DEVICE, its input is not.

Dims: B batch, C channels, H and W height and width, D = embed_dim.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("meta")  # stands in for "cuda" on a machine without a GPU


class PatchEmbedding(nn.Module):
    def __init__(self, in_ch=3, embed_dim=32, patch_size=8):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.patch_embed = nn.Conv2d(in_ch, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        x = (x - self.mean) / self.std          # planted
        x = self.patch_embed(x)                 # (B, D, H//8, W//8)
        return x.flatten(2).transpose(1, 2)     # (B, (H//8)*(W//8), D)


def main():
    B, C, H, W = 2, 3, 32, 32
    image = torch.rand(B, C, H, W)             # (B, C, H, W)
    model = PatchEmbedding(C).to(DEVICE)
    tokens = model(image)                      # (B, (H//8)*(W//8), D)
    print(f"tokens.shape {tokens.shape}")


if __name__ == "__main__":
    main()
