"""A VAE for 32 x 32 images: conv encoder, a linear head for the latent mean and log-variance.

Planted: the linear head was sized for 28 x 28 images (64 * 7 * 7 inputs).

Dims: B batch, C channels, H and W height and width, Z latent width.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class VAE(nn.Module):
    def __init__(self, in_ch=1, z_dim=16):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 32, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 4, stride=2, padding=1)
        self.to_moments = nn.Linear(64 * 7 * 7, 2 * z_dim)
        self.decode = nn.Linear(z_dim, in_ch * 32 * 32)

    def forward(self, x):
        B = x.shape[0]
        h = F.relu(self.conv2(F.relu(self.conv1(x)))).flatten(1)  # (B, 64 * H//4 * W//4)
        moments = self.to_moments(h)                              # planted
        mu, logvar = moments.chunk(2, dim=-1)                     # (B, Z) x2
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()      # (B, Z)
        return torch.sigmoid(self.decode(z)).view(B, -1, 32, 32)  # (B, C, 32, 32)


def main():
    B, C, H, W = 4, 1, 32, 32
    images = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    vae = VAE(C).to(DEVICE)
    recon = vae(images)                             # (B, C, 32, 32)
    print(f"recon.shape {recon.shape}")


if __name__ == "__main__":
    main()
