"""The Fashion-MNIST CNN of the deeplizard PyTorch course.

Two conv layers (5x5 kernels, no padding) each followed by relu and a 2x2 max
pool, then three linear layers down to the 10 Fashion-MNIST classes.

Dims: B batch, C channels (1, grayscale), H and W height and width (28 x 28).
The flatten hard-codes 12 * 4 * 4 = 192 features, so the network only takes
28 x 28 images: after it, the shapes are written with plain integers.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels=1, out_channels=6, kernel_size=5)
        self.conv2 = nn.Conv2d(in_channels=6, out_channels=12, kernel_size=5)

        self.fc1 = nn.Linear(in_features=12 * 4 * 4, out_features=120)
        self.fc2 = nn.Linear(in_features=120, out_features=60)
        self.out = nn.Linear(in_features=60, out_features=10)

    def forward(self, t):
        B, C, H, W = t.shape

        # hidden conv layers
        t = self.conv1(t)                               # (B, 6, H - 4, W - 4)
        t = F.relu(t)                                   # (B, 6, H - 4, W - 4)
        t = F.max_pool2d(t, kernel_size=2, stride=2)    # (B, 6, (H - 4)//2, (W - 4)//2)

        t = self.conv2(t)                               # (B, 12, (H - 4)//2 - 4, (W - 4)//2 - 4)
        t = F.relu(t)                                   # (B, 12, (H - 4)//2 - 4, (W - 4)//2 - 4)
        t = F.max_pool2d(t, kernel_size=2, stride=2)    # (B, 12, ((H - 4)//2 - 4)//2, ((W - 4)//2 - 4)//2)

        # hidden linear layers
        t = t.reshape(-1, 12 * 4 * 4)                   # (B, 192)
        t = self.fc1(t)                                 # (B, 120)
        t = F.relu(t)                                   # (B, 120)

        t = self.fc2(t)                                 # (B, 60)
        t = F.relu(t)                                   # (B, 60)

        # output layer
        t = self.out(t)                                 # (B, 10)
        return t                                        # (B, 10)


def fashion_cnn():
    """
    Conv2d, relu, max_pool2d, reshape, Linear
    """
    B, C, H, W = 8, 1, 28, 28
    images = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)

    network = Network().to(DEVICE)
    preds = network(images)                         # (B, 10)
    print(f"images.shape {images.shape}")
    print(f"preds.shape {preds.shape}")


def main():
    fashion_cnn()


if __name__ == "__main__":
    main()
