"""A CLIP-style text encoder: token and position embeddings, one transformer layer, the
end-of-text token's features projected into the joint space.

Planted: the token embedding table has 256 rows, the tokenizer makes ids up to 294.

Dims: B batch, N tokens, D width, E joint embedding width.
"""

import torch
import torch.nn as nn

DEVICE = torch.device("cpu")


class TextEncoder(nn.Module):
    def __init__(self, vocab_size=256, context=12, dim=32, embed_dim=16):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.positional_embedding = nn.Parameter(torch.zeros(context, dim))  # (N, D)
        layer = nn.TransformerEncoderLayer(dim, 4, 2 * dim, dropout=0.0, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, num_layers=1)
        self.ln_final = nn.LayerNorm(dim)
        self.text_projection = nn.Linear(dim, embed_dim, bias=False)

    def forward(self, text):
        x = self.token_embedding(text)                      # planted
        x = x + self.positional_embedding                   # (B, N, D)
        x = self.ln_final(self.transformer(x))              # (B, N, D)
        eot = x[torch.arange(x.shape[0]), text.argmax(-1)]  # (B, D)
        return self.text_projection(eot)                    # (B, E)


def main():
    B, N = 4, 12
    text = (torch.arange(B * N).view(B, N) * 7) % 300  # (B, N)
    encoder = TextEncoder(context=N).to(DEVICE)
    feats = encoder(text.to(DEVICE))                   # (B, E)
    print(f"feats.shape {feats.shape}")


if __name__ == "__main__":
    main()
