"""fashion_cnn.py with jaxtyping hints: the flatten hard-codes 12 * 4 * 4 features, so the
contract fixes the input at 1 x 28 x 28 and says so; the batch size stays free."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

DEVICE = torch.device("cpu")


class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels=1, out_channels=6, kernel_size=5)
        self.conv2 = nn.Conv2d(in_channels=6, out_channels=12, kernel_size=5)
        self.fc1 = nn.Linear(in_features=12 * 4 * 4, out_features=120)
        self.fc2 = nn.Linear(in_features=120, out_features=60)
        self.out = nn.Linear(in_features=60, out_features=10)

    def forward(self, t: Float[Tensor, "B 1 28 28"]) -> Float[Tensor, "B 10"]:
        t = F.max_pool2d(F.relu(self.conv1(t)), kernel_size=2, stride=2)  # (B, 6, 12, 12)
        t = F.max_pool2d(F.relu(self.conv2(t)), kernel_size=2, stride=2)  # (B, 12, 4, 4)
        t = t.reshape(-1, 12 * 4 * 4)                                     # (B, 192)
        t = F.relu(self.fc1(t))                                           # (B, 120)
        t = F.relu(self.fc2(t))                                           # (B, 60)
        return self.out(t)                                                # (B, 10)


def fashion_cnn():
    B, C, H, W = 8, 1, 28, 28
    images = torch.rand(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    network = Network().to(DEVICE)
    preds = network(images)                         # (B, 10)
    print(f"preds.shape {preds.shape}")


def main():
    fashion_cnn()


if __name__ == "__main__":
    main()
