"""A small rectified-flow model with a DiT-style transformer that predicts the velocity.

Rectified flow moves along the straight line between data x0 (t = 0) and noise (t = 1):
x_t = (1 - t) * x0 + t * noise, whose velocity dx_t/dt = noise - x0 is the training target.
The model patchifies the image into tokens, conditions every block on a sinusoidal time
embedding through adaLN (a per-image scale, shift and gate computed from the conditioning), and
unpatchifies the tokens back to an image. Sampling integrates the velocity from t = 1 to t = 0.

From "Essential PyTorch": Conv2d as a patchifier, flatten, transpose, view, permute, reshape,
broadcasting with [:, None], torch.rand / torch.randn_like to sample times and noise.

Dims: B batch, C channels, H and W height and width (divisible by p), p = patch_size,
D = dim, h heads, d = head_dim = D/h, N tokens = (H/p)*(W/p).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


def timestep_embedding(t, dim, max_period=10000):
    """
    t: (B,) times in [0, 1] -> (B, dim): cos and sin of 1000*t at dim/2 geometric frequencies
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)  # (dim/2,)
    args = 1000 * t[:, None] * freqs[None]                                                 # (B, dim/2)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)                           # (B, dim)


def sincos_pos_embed(grid_h, grid_w, dim, device):
    """
    Fixed 2D position embedding of a grid_h x grid_w grid of tokens, row-major:
    (grid_h*grid_w, dim), the first dim/2 channels encode the row, the last dim/2 the column
    """
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, device=device) / (dim // 4))  # (dim/4,)
    rows = torch.arange(grid_h, device=device)[:, None] * omega                  # (grid_h, dim/4)
    cols = torch.arange(grid_w, device=device)[:, None] * omega                  # (grid_w, dim/4)
    rows = torch.cat([rows.sin(), rows.cos()], dim=-1)                           # (grid_h, dim/2)
    cols = torch.cat([cols.sin(), cols.cos()], dim=-1)                           # (grid_w, dim/2)
    rows = rows[:, None].expand(-1, grid_w, -1)                                  # (grid_h, grid_w, dim/2)
    cols = cols[None].expand(grid_h, -1, -1)                                     # (grid_h, grid_w, dim/2)
    return torch.cat([rows, cols], dim=-1).flatten(0, 1)                         # (grid_h*grid_w, dim)


def modulate(x, shift, scale):
    """
    x: (B, N, D) tokens; shift, scale: (B, D), one per image, broadcast over the tokens
    """
    return x * (1 + scale[:, None]) + shift[:, None]  # (B, N, D)


class TimestepEmbedder(nn.Module):
    """Sinusoidal embedding of t, then an MLP: (B,) -> (B, D)."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t):
        t_freq = timestep_embedding(t, self.dim)  # (B, D)
        return self.mlp(t_freq)                   # (B, D)


class Attention(nn.Module):
    """
    D = dim, h = heads, d = head_dim = D // h
    """

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, D = x.shape
        h, d = self.heads, self.head_dim
        q, k, v = self.qkv(x).chunk(3, dim=-1)             # (B, N, D) x3
        q = q.view(B, N, h, d).transpose(1, 2)             # (B, h, N, d)
        k = k.view(B, N, h, d).transpose(1, 2)             # (B, h, N, d)
        v = v.view(B, N, h, d).transpose(1, 2)             # (B, h, N, d)
        attn = (q @ k.transpose(-2, -1)) * d**-0.5         # (B, h, N, N)
        attn = attn.softmax(dim=-1)                        # (B, h, N, N)
        out = (attn @ v).transpose(1, 2).reshape(B, N, D)  # (B, N, D)
        return self.proj(out)                              # (B, N, D)


class DiTBlock(nn.Module):
    """Attention and MLP, each with adaLN-Zero: the conditioning gives a shift and scale for the
    LayerNorm and a gate for the residual branch (zero at init, so each block starts as identity)."""

    def __init__(self, dim, heads, mlp_ratio=4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim),
            nn.GELU(approximate="tanh"),
            nn.Linear(mlp_ratio * dim, dim),
        )
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[-1].weight)  # (6*D, D)
        nn.init.zeros_(self.ada[-1].bias)    # (6*D,)

    def forward(self, x, c):
        """
        x: (B, N, D) tokens, c: (B, D) conditioning
        """
        B, N, D = x.shape
        mod = self.ada(c)                                                    # (B, 6*D)
        shift1, scale1, gate1, shift2, scale2, gate2 = mod.chunk(6, dim=-1)  # (B, D) x6
        h = modulate(self.norm1(x), shift1, scale1)                          # (B, N, D)
        x = x + gate1[:, None] * self.attn(h)                                # (B, N, D)
        h = modulate(self.norm2(x), shift2, scale2)                          # (B, N, D)
        x = x + gate2[:, None] * self.mlp(h)                                 # (B, N, D)
        return x                                                             # (B, N, D)


class FinalLayer(nn.Module):
    """adaLN, then a Linear to the p*p*C values of each token's patch."""

    def __init__(self, dim, patch_size, out_ch):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, patch_size * patch_size * out_ch)

    def forward(self, x, c):
        """
        x: (B, N, D) tokens, c: (B, D) conditioning
        """
        B, N, D = x.shape
        shift, scale = self.ada(c).chunk(2, dim=-1)  # (B, D) x2
        x = modulate(self.norm(x), shift, scale)     # (B, N, D)
        return self.linear(x)                        # (B, N, p*p*C)


class DiT(nn.Module):
    """
    p = patch_size, D = dim
    """

    def __init__(self, in_ch=4, patch_size=2, dim=256, depth=2, heads=4):
        super().__init__()
        self.patch_size = patch_size
        self.dim = dim
        self.patchify = nn.Conv2d(in_ch, dim, kernel_size=patch_size, stride=patch_size)
        self.t_embed = TimestepEmbedder(dim)
        self.blocks = nn.ModuleList([DiTBlock(dim, heads) for _ in range(depth)])
        self.final = FinalLayer(dim, patch_size, in_ch)

    def forward(self, x, t):
        """
        x: (B, C, H, W) the image at time t, t: (B,) -> the velocity (B, C, H, W)
        """
        B, C, H, W = x.shape
        p = self.patch_size
        x = self.patchify(x)                                          # (B, D, H/p, W/p)
        x = x.flatten(2).transpose(1, 2)                              # (B, (H/p)*(W/p), D)
        x = x + sincos_pos_embed(H // p, W // p, self.dim, x.device)  # (B, (H/p)*(W/p), D)
        c = self.t_embed(t)                                           # (B, D)
        for block in self.blocks:
            x = block(x, c)                                           # (B, (H/p)*(W/p), D)
        x = self.final(x, c)                                          # (B, (H/p)*(W/p), p*p*C)
        x = x.view(B, H // p, W // p, p, p, C)                        # (B, H/p, W/p, p, p, C)
        x = x.permute(0, 5, 1, 3, 2, 4)                               # (B, C, H/p, p, W/p, p)
        return x.reshape(B, C, H, W)                                  # (B, C, H, W)


def rectified_flow_loss(model, x0):
    """
    x0: (B, C, H, W) data. A random point on the straight path from x0 (t = 0) to noise (t = 1);
    the model regresses the path's velocity noise - x0 there
    """
    B, C, H, W = x0.shape
    noise = torch.randn_like(x0)                                              # (B, C, H, W)
    t = torch.rand(B, device=x0.device)                                       # (B,)
    x_t = (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * noise  # (B, C, H, W)
    v_target = noise - x0                                                     # (B, C, H, W)
    v_pred = model(x_t, t)                                                    # (B, C, H, W)
    return F.mse_loss(v_pred, v_target)                                       # ()


@torch.no_grad()
def sample(model, x, steps=4):
    """
    Euler steps along the predicted velocity, from noise x (t = 1) to data (t = 0)
    """
    B, C, H, W = x.shape
    for i in range(steps, 0, -1):
        t = torch.full((B,), i / steps, device=x.device)  # (B,)
        x = x - model(x, t) / steps                       # (B, C, H, W)
    return x                                              # (B, C, H, W)


def rectified_flow():
    """
    patchify, timestep embedding, adaLN, attention, unpatchify, the training step, sampling
    """
    B, C, H, W = 8, 4, 32, 32
    p, D, heads, depth = 4, 128, 4, 2
    x0 = torch.rand(B, C, H, W, device=DEVICE)      # (B, C, H, W)

    model = DiT(in_ch=C, patch_size=p, dim=D, depth=depth, heads=heads).to(DEVICE)
    loss = rectified_flow_loss(model, x0)           # ()
    print(f"x0.shape {x0.shape}")
    print(f"loss {loss.item():.3f}")

    noise = torch.randn(B, C, H, W, device=DEVICE)  # (B, C, H, W)
    samples = sample(model, noise, steps=4)         # (B, C, H, W)
    print(f"samples.shape {samples.shape}")


def main():
    rectified_flow()


if __name__ == "__main__":
    main()
