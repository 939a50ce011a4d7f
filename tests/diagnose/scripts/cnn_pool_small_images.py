"""A VGG-style feature extractor: conv, conv, pool, five times.

Planted: the images are 24 x 24, the fifth pooling gets a 0 x 0 output.

Dims: B batch, C channels, H and W height and width.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class VGGFeatures(nn.Module):
    def __init__(self, in_ch=3, widths=(8, 16, 32, 32, 32)):
        super().__init__()
        chans = [in_ch, *widths]
        self.convs = nn.ModuleList([nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans, chans[1:])])

    def forward(self, x):
        for conv in self.convs:
            x = F.max_pool2d(F.relu(conv(x)), kernel_size=2)  # planted
        return x.flatten(1)                                   # (B, 32 * H//32 * W//32)


def main():
    B, C, H, W = 2, 3, 24, 24
    images = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    features = VGGFeatures(C).to(DEVICE)
    out = features(images)                          # (B, F)
    print(f"out.shape {out.shape}")


if __name__ == "__main__":
    main()
