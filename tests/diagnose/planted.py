"""Seed-style models with one planted bug each; ``# planted: NAME`` marks the line that goes wrong.

Dims: B batch, C channels, H and W height and width, N tokens, D width, h heads, d = D // h.
"""
# fmt: off
# (seed style: the `# (B, C, H, W)` comments stay aligned)

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

# --- shapes ----------------------------------------------------------------------------------------


class PatchEmbedNoTranspose(nn.Module):
    """The seeds' PatchEmbedding without `.transpose(1, 2)`: tokens stay (B, D, P)."""

    def __init__(self, in_ch=3, embed_dim=64, patch_size=8):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_ch, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))  # (1, 1, D)

    def forward(self, x):
        B, C, H, W = x.shape
        x = self.patch_embed(x)                                      # (B, D, H//8, W//8)
        x = x.flatten(2)                                             # (B, D, P)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)  # planted: cat
        return x


class PatchEmbedWrongImageSize(nn.Module):
    """pos_embed sized for 64x64 images, fed 32x32 ones: (B, 17, D) + (1, 65, D)."""

    def __init__(self, img_size=64, in_ch=3, embed_dim=64, patch_size=8):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_ch, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))   # (1, 1, D)
        P = (img_size // patch_size) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, P + 1, embed_dim))  # (1, P + 1, D)

    def forward(self, x):
        B, C, H, W = x.shape
        x = self.patch_embed(x).flatten(2).transpose(1, 2)           # (B, P, D)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)  # (B, P + 1, D)
        x = x + self.pos_embed                                       # planted: broadcast
        return x


class FashionNet(nn.Module):
    """The deeplizard Fashion-MNIST CNN; 192 = 12 * 4 * 4 only holds for 28 x 28 images."""

    def __init__(self, flatten_with_reshape=True):
        super().__init__()
        self.flatten_with_reshape = flatten_with_reshape
        self.conv1 = nn.Conv2d(in_channels=1, out_channels=6, kernel_size=5)
        self.conv2 = nn.Conv2d(in_channels=6, out_channels=12, kernel_size=5)
        self.fc1 = nn.Linear(in_features=12 * 4 * 4, out_features=120)
        self.out = nn.Linear(in_features=120, out_features=10)

    def forward(self, t):
        t = F.max_pool2d(F.relu(self.conv1(t)), kernel_size=2, stride=2)  # (B, 6, (H - 4)//2, (W - 4)//2)
        t = F.max_pool2d(F.relu(self.conv2(t)), kernel_size=2, stride=2)  # (B, 12, ..., ...)
        if self.flatten_with_reshape:  # noqa: SIM108 (one line per tensor, as the seeds write them)
            t = t.reshape(-1, 12 * 4 * 4)                                 # planted: reshape
        else:
            t = t.flatten(1)                                              # (B, 12 * h * w)
        t = F.relu(self.fc1(t))                                           # planted: linear
        return self.out(t)                                                # (B, 10)


class TwoPoolings(nn.Module):
    """Two poolings of one image, stacked: the second pools with a bigger window."""

    def forward(self, x):
        fine = F.avg_pool2d(x, kernel_size=2)                  # (B, C, H//2, W//2)
        coarse = F.avg_pool2d(x, kernel_size=4)                # (B, C, H//4, W//4)
        return torch.stack([fine, coarse], dim=1)              # planted: stack


class TokenEmbedding(nn.Module):
    def __init__(self, vocab=50, dim=8):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)

    def forward(self, ids):
        return self.embed(ids)                                 # planted: embedding


class AttentionNoTranspose(nn.Module):
    """Self-attention that forgets `k.transpose(-2, -1)`."""

    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x):
        B, N, D = x.shape
        h, d = self.heads, D // self.heads
        q, k, v = self.qkv(x).chunk(3, dim=-1)                 # 3 x (B, N, D)
        q = q.view(B, N, h, d).transpose(1, 2)                 # (B, h, N, d)
        k = k.view(B, N, h, d).transpose(1, 2)                 # (B, h, N, d)
        attn = q @ k                                           # planted: matmul
        return attn


class TwoConvs(nn.Module):
    """conv2 was written for 8 channels, conv1 makes 6."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)

    def forward(self, x):
        x = F.relu(self.conv1(x))                              # (B, 6, H, W)
        return self.conv2(x)                                   # planted: conv


class Stem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, kernel_size=3, padding=1)

    def forward(self, x):
        return self.conv(x)                                    # planted: channels-last


class ViewAfterTranspose(nn.Module):
    def forward(self, x):
        B, N, D = x.shape
        x = x.transpose(1, 2)                                  # (B, D, N)
        return x.view(B, D * N)                                # planted: view-stride


class WidenThenNorm(nn.Module):
    """The LayerNorm was built for the width before the projection."""

    def __init__(self, dim=16):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.proj(x)                                       # (B, N, 2*D)
        return self.norm(x)                                    # planted: layer-norm


class LogFeatures(nn.Module):
    """Log features computed in float64, fed to a float32 Linear."""

    def __init__(self, dim=16):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x):
        feats = torch.log(x.double() + 1)                      # (B, D) float64
        return self.fc(feats)                                  # planted: dtype


# --- devices ---------------------------------------------------------------------------------------


class CausalMask(nn.Module):
    """A causal mask made in the forward without device=."""

    def forward(self, att):
        N = att.shape[-1]
        mask = torch.ones(N, N).tril()                         # planted: factory
        att = att.masked_fill(mask == 0, float("-inf"))        # planted: mask-meets
        return att.softmax(dim=-1)                             # (B, N, N)


class CausalMaskOnDevice(nn.Module):
    """The same mask, made on the attention's device: no lint."""

    def forward(self, att):
        N = att.shape[-1]
        mask = torch.ones(N, N, device=att.device).tril()      # (N, N)
        att = att.masked_fill(mask == 0, float("-inf"))        # (B, N, N)
        positions = torch.arange(N)                            # (N,)
        att = att[:, positions]                                # CPU indices index any device
        scale = torch.tensor(0.5)                              # 0-dim: mixes with any device
        return att.softmax(dim=-1) * scale                     # (B, N, N)


class CausalMaskSpelledOut(nn.Module):
    """device= on the call's second line; keywords passed through **kwargs: neither is reported."""

    def __init__(self, **factory_kwargs):
        super().__init__()
        self.factory_kwargs = factory_kwargs

    def forward(self, att):
        N = att.shape[-1]
        mask = torch.ones(
            N, N, device=att.device,
        ).tril()                                               # (N, N)
        bias = torch.zeros(N, N, **self.factory_kwargs)        # (N, N)
        return att.masked_fill(mask == 0, float("-inf")) + bias  # (B, N, N)


class ScaledNorm(nn.Module):
    """`self.scale` is a plain tensor attribute: `model.to()` does not move it."""

    def __init__(self, dim=8):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.scale = torch.ones(dim)                           # planted: attribute-set

    def forward(self, x):
        x = self.norm(x)                                       # (B, N, D)
        return x * self.scale                                  # planted: attribute-use


class ScaledNormBuffer(nn.Module):
    """The fix: a registered buffer follows `model.to()`."""

    def __init__(self, dim=8):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.register_buffer("scale", torch.ones(dim))

    def forward(self, x):
        return self.norm(x) * self.scale                       # (B, N, D)


class RotaryTable(nn.Module):
    """A plain tensor attribute and a factory, combined on the CPU, then moved: no lint."""

    def __init__(self, dim=8):
        super().__init__()
        self.inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2) / dim))  # (D//2,)

    def forward(self, x):
        B, N, D = x.shape
        t = torch.arange(N)                                    # (N,)
        freqs = torch.outer(t, self.inv_freq).to(x.device)     # (N, D//2)
        return x[..., : D // 2] * freqs.cos()                  # (B, N, D//2)


class MaskList(nn.Module):
    """Tensors kept in a plain list attribute."""

    def __init__(self, n=4):
        super().__init__()
        self.masks = [torch.ones(n), torch.zeros(n)]           # 2 x (N,)

    def forward(self, x):
        return x * self.masks[0]                               # planted: list-attribute


class CenterOnHost(nn.Module):
    """Statistics moved to the host with `.cpu()`, then used with the device tensor."""

    def forward(self, x):
        mean = x.mean(dim=1, keepdim=True).cpu()               # planted: cpu
        return x - mean                                        # planted: cpu-meets


class Normed(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(x)                                    # planted: input-device


class Projection(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.fc = nn.Linear(dim, dim, bias=False)

    def forward(self, x):
        return self.fc(x)                                      # planted: mixed


class Chatty(nn.Module):
    """Host syncs in a forward."""

    def __init__(self, dim=8):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x):
        x = self.fc(x)                                         # (B, D)
        top = x.max().item()                                   # planted: item
        print(x)                                               # planted: print
        keep = x.nonzero()                                     # planted: nonzero
        if x.sum() > 0:                                        # planted: bool
            x = x / top
        return x, keep


def line_of(marker: str) -> int:
    """The line marked ``# planted: <marker>`` in this file."""
    lines = Path(__file__).read_text().splitlines()
    found = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(f"# planted: {marker}")]
    assert len(found) == 1, f"marker {marker!r} found {len(found)} times"
    return found[0]
