"""A small CNN classifier trained on one batch.

Planted: the class labels are a float tensor, cross_entropy wants integer class indices.

Dims: B batch, C channels, H and W height and width, K classes.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class SmallCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 7 * 7, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 8, H//2, W//2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (B, 16, H//4, W//4)
        return self.fc(x.flatten(1))                # (B, K)


def main():
    B, C, H, W, K = 8, 1, 28, 28, 10
    images = torch.rand(B, C, H, W, device=DEVICE)             # (B, C, H, W)
    labels = torch.randint(0, K, (B,), device=DEVICE).float()  # (B,)
    model = SmallCNN(K).to(DEVICE)
    logits = model(images)                                     # (B, K)
    loss = F.cross_entropy(logits, labels)                     # planted
    print(f"loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
