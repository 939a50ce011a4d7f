"""Turn an image into patch tokens plus a class token (ViT-style patch embedding).

From "Essential PyTorch": Conv2d, nn.Parameter, expand, flatten, transpose, cat,
broadcasting.

Dims: B batch, C channels, H and W height and width, D = embed_dim.
The shape comments inside PatchEmbedding are for the default patch_size = 32.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class PatchEmbedding(nn.Module):
    """
    D = embed_dim, P = (img_size // patch_size) ** 2 patches per image
    """

    def __init__(self, img_size=224, in_ch=3, embed_dim=512, patch_size=32, p_dropout=0.1):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_ch, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))     # (1, 1, D)
        P = (img_size // patch_size) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, P + 1, embed_dim))  # (1, P + 1, D)
        self.dropout = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor):
        """
        D = embed_dim; one token per 32x32 patch, plus the class token
        """
        B, C, H, W = x.shape
        x = self.patch_embed(x)                                      # (B, D, H//32, W//32)
        x = x.flatten(2).transpose(1, 2)                             # (B, (H//32)*(W//32), D)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)  # (B, (H//32)*(W//32) + 1, D)
        x = x + self.pos_embed                                       # (B, (H//32)*(W//32) + 1, D)
        return self.dropout(x)                                       # (B, (H//32)*(W//32) + 1, D)


def patch_embedding():
    """
    torch.rand, shape, Conv2d, Parameter, expand, flatten, transpose
    """
    B, C, H, W = 8, 3, 128, 128
    P, D = 77, 512
    image = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    txt_toks = torch.rand(B, P, D, device=DEVICE)  # (B, P, D)
    print(f"image.shape {image.shape}")
    print(f"txt_toks.shape {txt_toks.shape}")

    model = PatchEmbedding(img_size=H, in_ch=C, embed_dim=D, patch_size=32).to(DEVICE)
    patch_emb = model(image)                       # (B, (H//32)*(W//32) + 1, D)
    print(f"patch_emb.shape {patch_emb.shape}")


def main():
    patch_embedding()


if __name__ == "__main__":
    main()
