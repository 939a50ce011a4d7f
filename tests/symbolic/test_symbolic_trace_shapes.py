"""trace_shapes: a trace from shapes alone, on fake tensors; models on the meta device included."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import shapetrace


class Block(nn.Module):
    """A small pre-norm transformer block (rotary-free), heads from the config."""

    def __init__(self, dim: int = 32, heads: int = 4, vocab: int = 50) -> None:
        super().__init__()
        self.heads = heads
        self.embed = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, vocab, bias=False)

    def forward(self, ids):
        B, T = ids.shape
        x = self.embed(ids)  # (B, T, D)
        q, k, v = self.qkv(self.norm(x)).split(x.shape[-1], dim=-1)
        q, k, v = (t.view(B, T, self.heads, -1).transpose(1, 2) for t in (q, k, v))  # (B, h, T, d)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, h, T, d)
        x = x + y.transpose(1, 2).reshape(B, T, -1)  # (B, T, D)
        return self.out(x)  # (B, T, V)


def test_a_meta_model_traces_from_dims_alone():
    with torch.device("meta"):
        model = Block()
    t = shapetrace.trace_shapes(model, shapetrace.TensorSpec("B T", dtype=torch.long), B=2, T=16, V=50)
    assert t.error is None and t.symbolic.state == "ran"
    by_line = {op.code: op.outputs[-1] for op in t.ops}
    assert by_line["x = self.embed(ids)  # (B, T, D)"].expr == "(B, T, 32)"
    assert by_line["y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, h, T, d)"].expr == "(B, 4, T, 8)"
    logits = t.ops[-1].outputs[0]
    assert logits.expr == "(B, T, V)" and logits.shape == (2, 16, 50) and logits.device.type == "meta"
    assert t.dims == {"B": 2, "T": 16, "V": 50}
    assert all(p.device.type == "meta" for p in model.parameters())  # the model is left as it was


def test_arguments_by_name_and_plain_values():
    class Masked(nn.Module):
        def forward(self, x, mask=None, scale=1.0):
            return (x * scale).masked_fill(mask[..., None] == 0, 0.0) if mask is not None else x

    t = shapetrace.trace_shapes(Masked(), x="B N D", mask=shapetrace.TensorSpec("B N", dtype=torch.bool), scale=2.0,
                                B=3, N=5, D=8)  # fmt: skip
    assert [op.outputs[0].expr for op in t.ops][-1] == "(B, N, D)"
    assert t.modules[0].inputs[1].expr == "(B, N)"


def test_a_forward_that_fails_ends_the_trace_there():
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(5, 2))
    t = shapetrace.trace_shapes(model, "B 8", B=3)
    assert t.error is not None and t.error.op_index == 1
    assert t.ops[0].outputs[0].expr == "(B, 4)" and t.ops[1].failed
    assert t.symbolic.state == "partial" and "raised" in t.symbolic.reason


def test_trace_shapes_leaves_the_model_as_it_was_and_says_where_it_stopped():
    class Remembers(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 4)
            self.history = []
            self.norm = nn.BatchNorm1d(4)

        def forward(self, x):
            h = self.norm(self.lin(x))  # (B, 4)
            self.history.append(h.shape)  # not on fake tensors
            return h.relu()

    model = Remembers().train()
    weights = {name: p for name, p in model.named_parameters()}
    stats = {name: b.clone() for name, b in model.named_buffers()}
    t = shapetrace.trace_shapes(model, "B D", B=5, D=8)
    assert model.history == [] and {name: p for name, p in model.named_parameters()} == weights
    assert all(torch.equal(b, stats[name]) for name, b in model.named_buffers())  # running stats not moved
    assert t.error is not None and "forward changes Remembers.history (list.append)" in t.error.message
    by_op = {op.op: op.outputs[0].expr for op in t.ops}
    assert by_op["linear"] == by_op["batch_norm"] == "(B, 4)" and "relu" not in by_op
