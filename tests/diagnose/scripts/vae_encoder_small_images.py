"""A VAE encoder: four stride-2 convs, then a 3x3 conv to the latent moments.

Planted: fed 16 x 16 images, the feature map is 1 x 1 when the unpadded 3x3 conv runs.

Dims: B batch, C channels, H and W height and width, Z latent channels.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class Encoder(nn.Module):
    def __init__(self, in_ch=3, ch=16, z_ch=4):
        super().__init__()
        chans = [in_ch, ch, ch, 2 * ch, 2 * ch]
        self.down = nn.ModuleList(
            [nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(chans, chans[1:])]
        )
        self.to_moments = nn.Conv2d(2 * ch, 2 * z_ch, 3)

    def forward(self, x):
        for conv in self.down:
            x = torch.relu(conv(x))                 # (B, C, H/2, W/2)
        moments = self.to_moments(x)                # planted
        mean, logvar = moments.chunk(2, dim=1)      # (B, Z, h, w) x2
        return mean + torch.randn_like(mean) * (0.5 * logvar).exp()  # (B, Z, h, w)


def main():
    B, C, H, W = 2, 3, 16, 16
    images = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    encoder = Encoder(in_ch=C).to(DEVICE)
    z = encoder(images)                             # (B, Z, h, w)
    print(f"z.shape {z.shape}")


if __name__ == "__main__":
    main()
