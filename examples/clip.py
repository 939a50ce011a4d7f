"""A small CLIP: an image tower and a text tower map images and captions into one embedding
space, where an image and its own caption should have the highest cosine similarity.

Image tower: patch embedding + class token, transformer blocks, the class token's output,
projected to E. Text tower: token + position embeddings, transformer blocks with a causal mask,
the output at each caption's end-of-text token (the largest token id, so argmax finds it),
projected to E. Training: L2-normalise both, a (B, B) matrix of scaled cosine similarities with
the matching pairs on the diagonal, and a cross-entropy over its rows and over its columns.

From "Essential PyTorch": Conv2d as a patchifier, nn.Parameter, nn.Embedding, expand, cat,
view, transpose, @, advanced indexing, F.normalize.

Dims: B batch (image-caption pairs), C, H, W the image (H = W, divisible by p), p = patch_size,
Dv = width of the image tower, T = context length (tokens per caption), V = vocab size,
Dt = width of the text tower, E = embed_dim of the shared space; in a block: N tokens,
D = width, h heads, d = head_dim = D/h.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


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

    def forward(self, x, mask=None):
        """
        mask: (N, N), added to the attention scores: -inf where a token must not look
        """
        B, N, D = x.shape
        h, d = self.heads, self.head_dim
        q, k, v = self.qkv(x).chunk(3, dim=-1)             # (B, N, D) x3
        q = q.view(B, N, h, d).transpose(1, 2)             # (B, h, N, d)
        k = k.view(B, N, h, d).transpose(1, 2)             # (B, h, N, d)
        v = v.view(B, N, h, d).transpose(1, 2)             # (B, h, N, d)
        attn = (q @ k.transpose(-2, -1)) * d**-0.5         # (B, h, N, N)
        if mask is not None:
            attn = attn + mask                             # (B, h, N, N)
        attn = attn.softmax(dim=-1)                        # (B, h, N, N)
        out = (attn @ v).transpose(1, 2).reshape(B, N, D)  # (B, N, D)
        return self.proj(out)                              # (B, N, D)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attention, then x + MLP."""

    def __init__(self, dim, heads, mlp_ratio=4):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim),
            nn.GELU(),
            nn.Linear(mlp_ratio * dim, dim),
        )

    def forward(self, x, mask=None):
        B, N, D = x.shape
        x = x + self.attn(self.ln1(x), mask)  # (B, N, D)
        x = x + self.mlp(self.ln2(x))         # (B, N, D)
        return x                              # (B, N, D)


class ImageEncoder(nn.Module):
    """
    p = patch_size, P = (img_size // p) ** 2 patches, Dv = width, E = embed_dim
    """

    def __init__(self, in_ch=3, img_size=64, patch_size=16, width=128, depth=2, heads=4, embed_dim=64):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_ch, width, kernel_size=patch_size, stride=patch_size, bias=False)
        P = (img_size // patch_size) ** 2
        scale = width**-0.5
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * scale)      # (1, 1, Dv)
        self.pos_embed = nn.Parameter(torch.randn(1, P + 1, width) * scale)  # (1, P + 1, Dv)
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(depth)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, embed_dim) * scale)      # (Dv, E)

    def forward(self, x):
        """
        x: (B, C, H, W) images -> (B, E)
        """
        B, C, H, W = x.shape
        x = self.patch_embed(x)                                      # (B, Dv, H/p, W/p)
        x = x.flatten(2).transpose(1, 2)                             # (B, (H/p)*(W/p), Dv)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)  # (B, (H/p)*(W/p) + 1, Dv)
        x = x + self.pos_embed                                       # (B, (H/p)*(W/p) + 1, Dv)
        x = self.ln_pre(x)                                           # (B, (H/p)*(W/p) + 1, Dv)
        for block in self.blocks:
            x = block(x)                                             # (B, (H/p)*(W/p) + 1, Dv)
        x = self.ln_post(x[:, 0])                                    # (B, Dv)
        return x @ self.proj                                         # (B, E)


class TextEncoder(nn.Module):
    """
    V = vocab_size, T = context_length, Dt = width, E = embed_dim
    """

    def __init__(self, vocab_size=1000, context_length=16, width=64, depth=2, heads=4, embed_dim=64):
        super().__init__()
        self.token_embed = nn.Embedding(vocab_size, width)
        self.pos_embed = nn.Parameter(torch.randn(context_length, width) * 0.01)  # (T, Dt)
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(depth)])
        self.ln_final = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, embed_dim) * width**-0.5)     # (Dt, E)

    def forward(self, idx):
        """
        idx: (B, T) token ids, each caption ending with the end-of-text token -> (B, E)
        """
        B, T = idx.shape
        x = self.token_embed(idx)                                            # (B, T, Dt)
        x = x + self.pos_embed[:T]                                           # (B, T, Dt)
        mask = torch.full((T, T), float("-inf"), device=idx.device).triu(1)  # (T, T)
        for block in self.blocks:
            x = block(x, mask)                                               # (B, T, Dt)
        x = self.ln_final(x)                                                 # (B, T, Dt)
        x = x[torch.arange(B), idx.argmax(dim=-1)]                           # (B, Dt)
        return x @ self.proj                                                 # (B, E)


class CLIP(nn.Module):
    def __init__(self, visual: ImageEncoder, text: TextEncoder):
        super().__init__()
        self.visual = visual
        self.text = text
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))  # ()

    def forward(self, images, idx):
        """
        images: (B, C, H, W), idx: (B, T) their captions -> logits per image and per caption
        """
        img = F.normalize(self.visual(images), dim=-1)   # (B, E)
        txt = F.normalize(self.text(idx), dim=-1)        # (B, E)
        logits = self.logit_scale.exp() * img @ txt.t()  # (B, B)
        return logits, logits.t()                        # (B, B) x2


def clip_loss(logits_per_image, logits_per_text):
    """
    Image i's caption is caption i: the right class of row i is i, in both directions
    """
    B = logits_per_image.shape[0]
    labels = torch.arange(B, device=logits_per_image.device)  # (B,)
    loss_i = F.cross_entropy(logits_per_image, labels)        # ()
    loss_t = F.cross_entropy(logits_per_text, labels)         # ()
    return (loss_i + loss_t) / 2                              # ()


def clip():
    """
    two towers, normalize, logit scale, (B, B) logits, symmetric cross-entropy
    """
    B, C, H, W = 8, 3, 64, 64
    T, V = 16, 1000
    p, Dv, Dt, E = 16, 128, 64, 64
    heads, depth = 4, 2
    images = torch.rand(B, C, H, W, device=DEVICE)           # (B, C, H, W)
    text = torch.randint(0, V - 1, (B, T), device=DEVICE)    # (B, T)
    eot = torch.randint(1, T, (B,), device=DEVICE)           # (B,)
    text = text.scatter(1, eot[:, None], V - 1)              # (B, T)

    visual = ImageEncoder(C, H, p, width=Dv, depth=depth, heads=heads, embed_dim=E)
    text_tower = TextEncoder(V, T, width=Dt, depth=depth, heads=heads, embed_dim=E)
    model = CLIP(visual, text_tower).to(DEVICE)
    logits_per_image, logits_per_text = model(images, text)  # (B, B) x2
    loss = clip_loss(logits_per_image, logits_per_text)      # ()
    print(f"images.shape {images.shape}")
    print(f"text.shape {text.shape}")
    print(f"logits_per_image.shape {logits_per_image.shape}")
    print(f"loss {loss.item():.3f}")


def main():
    clip()


if __name__ == "__main__":
    main()
