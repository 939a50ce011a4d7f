"""patch_embed.py with its contract written as jaxtyping hints instead of a docstring.

Under `shapetrace` (or `shapetrace.trace(model)`) the hints are checked on every call, with no
decorator: the input binds B, C, H, W; the output must be (B, (H//p)*(W//p) + 1, D), where p
is read from the module itself (`{self.patch_size}`) and D is bound by the output.
"""

import torch
import torch.nn as nn
from jaxtyping import Float
from torch import Tensor

DEVICE = torch.device("cpu")

Image = Float[Tensor, "B C H W"]
Tokens = Float[Tensor, "B (H//{self.patch_size})*(W//{self.patch_size})+1 D"]


class PatchEmbedding(nn.Module):
    """
    D = embed_dim, P = (img_size // patch_size) ** 2 patches per image
    """

    def __init__(self, img_size=224, in_ch=3, embed_dim=512, patch_size=32, p_dropout=0.1):
        super().__init__()
        self.patch_size = patch_size
        self.patch_embed = nn.Conv2d(in_ch, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))     # (1, 1, D)
        P = (img_size // patch_size) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, P + 1, embed_dim))  # (1, P + 1, D)
        self.dropout = nn.Dropout(p_dropout)

    def forward(self, x: Image) -> Tokens:
        B, C, H, W = x.shape
        x = self.patch_embed(x)                                      # (B, D, H//32, W//32)
        x = x.flatten(2).transpose(1, 2)                             # (B, (H//32)*(W//32), D)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)  # (B, (H//32)*(W//32) + 1, D)
        x = x + self.pos_embed                                       # (B, (H//32)*(W//32) + 1, D)
        return self.dropout(x)                                       # (B, (H//32)*(W//32) + 1, D)


def patch_embedding():
    B, C, H, W = 8, 3, 128, 128
    D = 512
    image = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    model = PatchEmbedding(img_size=H, in_ch=C, embed_dim=D, patch_size=32).to(DEVICE)
    patch_emb = model(image)                       # (B, (H//32)*(W//32) + 1, D)
    print(f"patch_emb.shape {patch_emb.shape}")


def main():
    patch_embedding()


if __name__ == "__main__":
    main()
