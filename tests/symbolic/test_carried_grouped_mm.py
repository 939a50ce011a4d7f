"""``torch._grouped_mm``, an MoE layer's experts (transformers' ``grouped_mm`` on torch 2.10 and
later), answered in the replay (shapetrace/symbolic/carried.py, ``_grouped_mm``): torch's meta
function rejects float32 operands (its CUDA kernel's rule) though the CPU kernel takes them, so
torch's fake run stopped there and the rest of an MoE model kept its concrete sizes. Where torch's
meta function runs (bfloat16), the carried output is torch's (sizes, strides, dtype) and the
ShapeEnv ends as torch's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from test_carried_spatial import _assumes_no_more_than_torch, _both, _fresh_run, _make  # sibling test module
from torch import nn

import shapetrace
from shapetrace.symbolic.carried import carried


class Experts(nn.Module):
    """Top-2 routing over 4 experts, the experts run as one grouped matrix product per layer
    (transformers' MoE experts: tokens sorted by expert, offsets from a histogram)."""

    def __init__(self, dim: int = 16, hidden: int = 32, experts: int = 4) -> None:
        super().__init__()
        self.router = nn.Linear(dim, experts)
        self.up = nn.Parameter(torch.randn(experts, dim, hidden) / 4)
        self.down = nn.Parameter(torch.randn(experts, hidden, dim) / 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        tokens = x.reshape(B * T, D)                                     # (B*T, D)
        weights, chosen = self.router(tokens).softmax(-1).topk(2, dim=-1)  # (B*T, 2), (B*T, 2)
        expert, order = chosen.reshape(-1).sort()                        # (2*B*T,), (2*B*T,)
        routed = tokens[order // 2]                                      # (2*B*T, D)
        counts = torch.histc(expert.float(), bins=4, min=0, max=3)       # (4,)
        offsets = torch.cumsum(counts, 0).to(torch.int32)                # (4,)
        hidden = F.grouped_mm(routed, self.up, offs=offsets).relu()      # (2*B*T, 32)
        out = F.grouped_mm(hidden, self.down, offs=offsets)              # (2*B*T, D)
        mixed = torch.zeros_like(tokens).index_add(0, order // 2, out * weights.reshape(-1)[order, None])
        return mixed.reshape(B, T, D)                                    # (B, T, D)


def test_an_moe_layer_on_float32_keeps_its_dims():
    model = Experts().eval()
    with torch.no_grad(), shapetrace.trace(model, dims="B T D") as t:
        model(torch.rand(2, 8, 16))
    assert t.symbolic.state == "ran", t.symbolic.describe()
    products = [op for op in t.ops if op.op == "_grouped_mm"]
    # D is fixed to 16 by the router's linear: the experts' 16 outputs are a number equal to it
    assert [op.outputs[0].expr for op in products] == ["(2*B*T, 32)", "(2*B*T, D?)"]
    assert t.ops[-1].outputs[0].expr == "(B, T, D?)"


def _bf16_experts(m, transposed=False):
    tokens = m(("B", 16), dtype=torch.bfloat16)
    weight = torch.zeros(4, 32, 16, dtype=torch.bfloat16)
    return (torch._grouped_mm, (tokens, weight.transpose(1, 2) if transposed else weight.permute(0, 2, 1).contiguous()),
            {"offs": torch.tensor([2, 4, 6, 8], dtype=torch.int32)})  # fmt: skip


def test_where_torchs_meta_function_runs_the_output_and_guards_are_torchs():
    for transposed in (False, True):
        torchs, ours = _both(lambda m, transposed=transposed: _bf16_experts(m, transposed))
        assert ours is not None and ours[0] == torchs[0]  # sizes, strides, offset, dtype, device, grad
        _assumes_no_more_than_torch(ours[1], torchs[1], f"transposed={transposed}")


def test_what_the_rule_leaves_to_torch():
    run = _fresh_run()
    with run.running(grad=False):
        tokens = _make(run, ("B", 16))
        weight, offs = torch.zeros(4, 16, 32), torch.tensor([1, 2, 3, 4], dtype=torch.int32)
        assert carried(torch._grouped_mm, (tokens, weight), {"offs": offs}) is not None
        assert carried(torch._grouped_mm, (tokens, weight), {}) is None  # no offsets: torch raises
        assert carried(torch._grouped_mm, (tokens, weight), {"offs": offs, "bias": torch.zeros(4, 32)}) is None
        assert carried(torch._grouped_mm, (tokens, weight.double()), {"offs": offs}) is None  # dtypes differ
    with run.running(grad=True):
        assert carried(torch._grouped_mm, (_make(run, ("B", 16), requires_grad=True), weight), {"offs": offs}) is None
