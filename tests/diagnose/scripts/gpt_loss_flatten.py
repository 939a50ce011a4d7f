"""A tiny GPT language model and its next-token loss.

Planted: cross_entropy gets logits (B, T, V) and targets (B, T) as they are.

Dims: B batch, T tokens, D width, V vocabulary.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

DEVICE = torch.device("cpu")


class TinyGPT(nn.Module):
    def __init__(self, vocab_size=50, block_size=16, dim=32, heads=4):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, dim)
        self.pos_emb = nn.Embedding(block_size, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True)
        self.blocks = nn.TransformerEncoder(layer, num_layers=1)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, idx):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)          # (T,)
        x = self.tok_emb(idx) + self.pos_emb(pos)         # (B, T, D)
        x = self.blocks(x)                                # (B, T, D)
        return self.head(x)                               # (B, T, V)


def main():
    B, T, V = 4, 16, 50
    idx = torch.randint(0, V, (B, T + 1), device=DEVICE)  # (B, T + 1)
    inputs, targets = idx[:, :-1], idx[:, 1:]             # (B, T) x2
    model = TinyGPT(vocab_size=V, block_size=T).to(DEVICE)
    logits = model(inputs)                                # (B, T, V)
    loss = F.cross_entropy(logits, targets)               # planted
    print(f"loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
