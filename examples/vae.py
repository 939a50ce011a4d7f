"""A convolutional VAE: encode an image to a small latent, sample it, decode it back.

The encoder's stride-2 convs take the image to a latent of Z channels at H/8 x W/8 and predict a
mean and a log-variance per latent element; the reparameterisation trick samples the latent so
that gradients flow through mu and logvar; the decoder upsamples back to the image. The loss is
the reconstruction error plus the KL divergence to a standard normal, summed per image and
averaged over the batch.

From "Essential PyTorch": Conv2d with stride 2, GroupNorm, chunk, torch.randn_like,
F.interpolate, sum over dims, mean.

Dims: B batch, C image channels, H and W height and width (divisible by 8), ch = base_ch,
Z = z_ch latent channels (4, as in Stable Diffusion's VAE).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


def conv_norm_act(cin, cout, stride=1):
    """A 3x3 conv (same padding; stride 2 halves H and W), GroupNorm, SiLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1),
        nn.GroupNorm(8, cout),
        nn.SiLU(),
    )


class Encoder(nn.Module):
    """
    ch = base_ch, Z = z_ch
    """

    def __init__(self, in_ch=3, base_ch=32, z_ch=4):
        super().__init__()
        self.stem = conv_norm_act(in_ch, base_ch)
        self.down1 = conv_norm_act(base_ch, 2 * base_ch, stride=2)
        self.down2 = conv_norm_act(2 * base_ch, 4 * base_ch, stride=2)
        self.down3 = conv_norm_act(4 * base_ch, 4 * base_ch, stride=2)
        self.to_moments = nn.Conv2d(4 * base_ch, 2 * z_ch, kernel_size=1)

    def forward(self, x):
        """
        x: (B, C, H, W) -> mu, logvar: (B, Z, H/8, W/8) each
        """
        B, C, H, W = x.shape
        h = self.stem(x)                      # (B, ch, H, W)
        h = self.down1(h)                     # (B, 2*ch, H/2, W/2)
        h = self.down2(h)                     # (B, 4*ch, H/4, W/4)
        h = self.down3(h)                     # (B, 4*ch, H/8, W/8)
        moments = self.to_moments(h)          # (B, 2*Z, H/8, W/8)
        mu, logvar = moments.chunk(2, dim=1)  # (B, Z, H/8, W/8) x2
        return mu, logvar                     # (B, Z, H/8, W/8) x2


class Decoder(nn.Module):
    """
    ch = base_ch, Z = z_ch
    """

    def __init__(self, out_ch=3, base_ch=32, z_ch=4):
        super().__init__()
        self.conv_in = conv_norm_act(z_ch, 4 * base_ch)
        self.up1 = conv_norm_act(4 * base_ch, 2 * base_ch)
        self.up2 = conv_norm_act(2 * base_ch, base_ch)
        self.up3 = conv_norm_act(base_ch, base_ch)
        self.conv_out = nn.Conv2d(base_ch, out_ch, kernel_size=3, padding=1)

    def forward(self, z):
        """
        z: (B, Z, H/8, W/8) -> (B, C, H, W) pixel values in [0, 1]
        """
        h = self.conv_in(z)                                   # (B, 4*ch, H/8, W/8)
        h = F.interpolate(h, scale_factor=2, mode="nearest")  # (B, 4*ch, H/4, W/4)
        h = self.up1(h)                                       # (B, 2*ch, H/4, W/4)
        h = F.interpolate(h, scale_factor=2, mode="nearest")  # (B, 2*ch, H/2, W/2)
        h = self.up2(h)                                       # (B, ch, H/2, W/2)
        h = F.interpolate(h, scale_factor=2, mode="nearest")  # (B, ch, H, W)
        h = self.up3(h)                                       # (B, ch, H, W)
        return torch.sigmoid(self.conv_out(h))                # (B, C, H, W)


class VAE(nn.Module):
    def __init__(self, in_ch=3, base_ch=32, z_ch=4):
        super().__init__()
        self.encoder = Encoder(in_ch, base_ch, z_ch)
        self.decoder = Decoder(in_ch, base_ch, z_ch)

    def forward(self, x):
        """
        Z = z_ch; returns the reconstruction, mu and logvar
        """
        B, C, H, W = x.shape
        mu, logvar = self.encoder(x)          # (B, Z, H/8, W/8) x2
        std = torch.exp(0.5 * logvar)         # (B, Z, H/8, W/8)
        z = mu + torch.randn_like(std) * std  # (B, Z, H/8, W/8)
        x_hat = self.decoder(z)               # (B, C, H, W)
        return x_hat, mu, logvar              # (B, C, H, W), (B, Z, H/8, W/8) x2


def vae_loss(x, x_hat, mu, logvar, beta=1.0):
    """
    Squared error summed over each image's pixels, plus beta * KL(q(z|x) || N(0, I)) summed over
    each image's latent, averaged over the batch
    """
    rec = ((x_hat - x) ** 2).sum(dim=(1, 2, 3))                         # (B,)
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=(1, 2, 3))  # (B,)
    return (rec + beta * kl).mean()                                     # ()


def vae():
    """
    Conv2d stride 2, chunk, randn_like, interpolate, sum(dim=...), mean
    """
    B, C, H, W = 4, 3, 64, 64
    ch, Z = 32, 4
    images = torch.rand(B, C, H, W, device=DEVICE)            # (B, C, H, W)

    model = VAE(in_ch=C, base_ch=ch, z_ch=Z).to(DEVICE)
    x_hat, mu, logvar = model(images)                         # (B, C, H, W), (B, Z, H/8, W/8) x2
    loss = vae_loss(images, x_hat, mu, logvar)                # ()
    print(f"images.shape {images.shape}")
    print(f"mu.shape {mu.shape}")
    print(f"x_hat.shape {x_hat.shape}")
    print(f"loss {loss.item():.1f}")

    # New images: decode latents sampled from the prior.
    with torch.no_grad():
        z = torch.randn(B, Z, H // 8, W // 8, device=DEVICE)  # (B, Z, H/8, W/8)
        samples = model.decoder(z)                            # (B, C, H, W)
    print(f"samples.shape {samples.shape}")


def main():
    vae()


if __name__ == "__main__":
    main()
