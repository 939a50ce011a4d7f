"""A small U-Net for per-pixel classification (segmentation).

The encoder halves H and W and doubles the channels at each level; the decoder upsamples back,
and at each level concatenates the encoder's feature map of the same size (the skip connection)
along the channels before mixing them with convs.

From "Essential PyTorch": Conv2d (same padding, stride 2), MaxPool2d, GroupNorm, nn.Upsample,
ConvTranspose2d, torch.cat along dim=1, nn.Sequential.

Dims: B batch, C image channels, H and W height and width (divisible by 8), ch = base_ch
(channels of the first level), K = num_classes.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class ConvBlock(nn.Sequential):
    """Two same-padding 3x3 convs, each followed by GroupNorm and SiLU: cin -> cout channels,
    H and W unchanged."""

    def __init__(self, cin, cout, groups=8):
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size=3, padding=1),
            nn.GroupNorm(groups, cout),
            nn.SiLU(),
            nn.Conv2d(cout, cout, kernel_size=3, padding=1),
            nn.GroupNorm(groups, cout),
            nn.SiLU(),
        )


class Down(nn.Module):
    """Halve H and W (2x2 max pool, or a stride-2 3x3 conv), then double the channels."""

    def __init__(self, cin, strided_conv=False):
        super().__init__()
        if strided_conv:
            self.down = nn.Conv2d(cin, cin, kernel_size=3, stride=2, padding=1)
        else:
            self.down = nn.MaxPool2d(kernel_size=2)
        self.block = ConvBlock(cin, 2 * cin)

    def forward(self, x):
        B, C, H, W = x.shape
        x = self.down(x)      # (B, C, H/2, W/2)
        return self.block(x)  # (B, 2*C, H/2, W/2)


class Up(nn.Module):
    """Double H and W and halve the channels, concatenate the skip connection, then a ConvBlock.

    transposed=True: a learned ConvTranspose2d (kernel 2, stride 2) does both.
    transposed=False: nn.Upsample (nearest) doubles H and W, a 3x3 conv halves the channels.
    """

    def __init__(self, cin, transposed=True):
        super().__init__()
        self.transposed = transposed
        if transposed:
            self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
        else:
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.proj = nn.Conv2d(cin, cin // 2, kernel_size=3, padding=1)
        self.block = ConvBlock(cin, cin // 2)

    def forward(self, x, skip):
        """
        skip: (B, C/2, 2*H, 2*W), the encoder's feature map of the size this block outputs
        """
        B, C, H, W = x.shape
        if self.transposed:
            x = self.up(x)               # (B, C/2, 2*H, 2*W)
        else:
            x = self.up(x)               # (B, C, 2*H, 2*W)
            x = self.proj(x)             # (B, C/2, 2*H, 2*W)
        x = torch.cat([x, skip], dim=1)  # (B, C, 2*H, 2*W)
        return self.block(x)             # (B, C/2, 2*H, 2*W)


class UNet(nn.Module):
    """
    ch = base_ch, K = num_classes; level i has 2**i * ch channels at H/2**i x W/2**i.
    The first two levels downsample by max pooling (as the original U-Net), the bottleneck by a
    stride-2 conv (as diffusion U-Nets); the first up block learns its upsampling.
    """

    def __init__(self, in_ch=3, base_ch=64, num_classes=21):
        super().__init__()
        self.stem = ConvBlock(in_ch, base_ch)
        self.down1 = Down(base_ch)
        self.down2 = Down(2 * base_ch)
        self.bottleneck = Down(4 * base_ch, strided_conv=True)
        self.up1 = Up(8 * base_ch, transposed=True)
        self.up2 = Up(4 * base_ch, transposed=False)
        self.up3 = Up(2 * base_ch, transposed=False)
        self.head = nn.Conv2d(base_ch, num_classes, kernel_size=1)

    def forward(self, x):
        """
        x: (B, C, H, W) images -> (B, K, H, W) per-pixel class logits
        """
        B, C, H, W = x.shape
        s1 = self.stem(x)        # (B, ch, H, W)
        s2 = self.down1(s1)      # (B, 2*ch, H/2, W/2)
        s3 = self.down2(s2)      # (B, 4*ch, H/4, W/4)
        x = self.bottleneck(s3)  # (B, 8*ch, H/8, W/8)
        x = self.up1(x, s3)      # (B, 4*ch, H/4, W/4)
        x = self.up2(x, s2)      # (B, 2*ch, H/2, W/2)
        x = self.up3(x, s1)      # (B, ch, H, W)
        return self.head(x)      # (B, K, H, W)


def unet():
    """
    Conv2d, MaxPool2d, GroupNorm, Upsample, ConvTranspose2d, cat, cross_entropy
    """
    B, C, H, W = 2, 3, 64, 64
    ch, K = 64, 21
    images = torch.rand(B, C, H, W, device=DEVICE)          # (B, C, H, W)
    target = torch.randint(0, K, (B, H, W), device=DEVICE)  # (B, H, W)

    model = UNet(in_ch=C, base_ch=ch, num_classes=K).to(DEVICE)
    logits = model(images)                                  # (B, K, H, W)
    loss = F.cross_entropy(logits, target)                  # ()
    print(f"images.shape {images.shape}")
    print(f"logits.shape {logits.shape}")
    print(f"loss {loss.item():.3f}")


def main():
    unet()


if __name__ == "__main__":
    main()
