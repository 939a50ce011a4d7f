"""Rectified flow: the point on the straight line from noise to data at time t.

Planted: the per-sample time t (B,) multiplies an image batch (B, C, H, W).

Dims: B batch, C channels, H and W height and width.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class TinyVelocity(nn.Module):
    def __init__(self, ch=3, hidden=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(ch + 1, hidden, 3, padding=1), nn.SiLU(), nn.Conv2d(hidden, ch, 3, padding=1)
        )

    def forward(self, x_t, t):
        B, C, H, W = x_t.shape
        t_map = t.view(B, 1, 1, 1).expand(B, 1, H, W)  # (B, 1, H, W)
        return self.net(torch.cat([x_t, t_map], dim=1))  # (B, C, H, W)


def main():
    B, C, H, W = 4, 3, 16, 16
    x1 = torch.rand(B, C, H, W, device=DEVICE)          # (B, C, H, W)
    x0 = torch.randn(B, C, H, W, device=DEVICE)         # (B, C, H, W)
    t = torch.rand(B, device=DEVICE)                    # (B,)
    x_t = x0 + t * (x1 - x0)                            # planted
    model = TinyVelocity(ch=C).to(DEVICE)
    v = model(x_t, t)                                   # (B, C, H, W)
    loss = ((v - (x1 - x0)) ** 2).mean()                # ()
    print(f"loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
