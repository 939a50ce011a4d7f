"""Repeated blocks are replayed once: the expressions are those of a full replay, block for block."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import shapetrace
from shapetrace.symbolic import engine, shapes

EXAMPLES = {  # example file -> the function its main() runs
    "tokenize_image": "tokenize_image", "mlp": "mlp", "patch_embed": "patch_embedding", "attention": "attention",
    "conv_rules": "conv_rules", "fashion_cnn": "fashion_cnn",
}  # fmt: skip


def everything(t) -> tuple:
    """Every expression the pass gave, and its verdicts."""
    return (
        [(tuple(m.expr for m in op.inputs), tuple(m.expr for m in op.outputs)) for op in t.ops],
        [(tuple(m.expr for m in c.inputs), tuple(m.expr for m in c.outputs)) for c in t.modules],
        [(s.dim, s.expr, s.op_index, s.reason) for s in t.specializations],
        t.dims, t.symbolic.state, t.symbolic.reason,
    )  # fmt: skip


def exact(t) -> tuple:
    """Every exact expression (without the divisibility the printed ones assume)."""
    return (
        [(tuple(m.expr_exact for m in op.inputs), tuple(m.expr_exact for m in op.outputs)) for op in t.ops],
        [(tuple(m.expr_exact for m in c.inputs), tuple(m.expr_exact for m in c.outputs)) for c in t.modules],
    )


def with_and_without(monkeypatch, run, *patches: tuple) -> tuple:
    """``run()`` traced twice, and the pass run: as shapetrace runs it, then with each
    ``(object, attribute, value)`` of ``patches`` set (one of its shortcuts turned off)."""
    first = run()
    first.symbolic
    with monkeypatch.context() as patched:
        for target, name, value in patches:
            patched.setattr(target, name, value)
        second = run()
        second.symbolic
    return first, second


def with_and_without_reuse(monkeypatch, run) -> tuple:
    """Blocks reused, then every block replayed."""
    return with_and_without(monkeypatch, run, (engine, "concrete_groups", lambda *args: {}))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx  # numbers the copies: not compared
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.qkv(self.norm(x)).view(B, N, 3, self.heads, D // self.heads).unbind(2)  # 3 x (B, N, h, d)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # (B, h, N, d)
        x = x + y.transpose(1, 2).reshape(B, N, D)  # (B, N, D)
        return x + self.mlp(x)  # (B, N, D)


class Stack(nn.Module):
    def __init__(self, depth: int = 6, dim: int = 32, vocab: int = 50) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(Block(dim, 4, i) for i in range(depth))
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids):
        x = self.embed(ids)  # (B, N, D)
        for block in self.blocks:
            x = block(x)  # (B, N, D)
        return self.head(x)  # (B, N, V)


def test_a_stack_of_identical_blocks_is_replayed_once(monkeypatch):
    model = Stack().eval()
    ids = torch.randint(0, 50, (2, 9))

    def run():
        with torch.no_grad(), shapetrace.trace(model, dims="B N") as t:
            model(ids)
        return t

    reused, full = with_and_without_reuse(monkeypatch, run)
    assert reused.symbolic.reused_calls == 5 and full.symbolic.reused_calls == 0  # blocks 1-5 spliced from block 0
    assert everything(reused) == everything(full)
    last = next(op for op in reversed(reused.ops) if op.module == "blocks.5.mlp.2")
    assert last.outputs[0].expr == "(B, N, 32)" and reused.modules[-1].outputs[0].expr == "(B, N, 50)"
    assert [c.call for c in reused.modules if c.path == "blocks.5.mlp.0"] == [1]


def test_the_copies_of_a_spliced_block_read_as_its_ops_one_by_one(monkeypatch):
    model = Stack(depth=5).eval()
    ids = torch.randint(0, 50, (2, 9))
    copied = []
    read_as_twins = engine._Replay._copy_twin

    def counted(self, *args):
        copied.append(read_as_twins(self, *args))
        return copied[-1]

    def run():
        with torch.no_grad(), shapetrace.trace(model, dims="B N") as t:
            model(ids)
        return t

    monkeypatch.setattr(engine._Replay, "_copy_twin", counted)
    at_once, one_by_one = with_and_without(monkeypatch, run, (engine._Twins, "copies", lambda self, kept: {}))
    ops_per_block = sum(1 for op in at_once.ops if op.module is not None and op.module.startswith("blocks.0"))
    assert copied == [ops_per_block] * 4  # blocks 1-4, each read from block 0's ops at once
    assert at_once.symbolic.reused_calls == one_by_one.symbolic.reused_calls == 4
    assert everything(at_once) == everything(one_by_one)
    assert exact(at_once) == exact(one_by_one)


WIDTH = 24  # a script constant: a size of 24 an op computed reads `WIDTH?`, a buffer's does not


class Shifted(nn.Module):
    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.lin = nn.Linear(WIDTH, WIDTH)
        self.table = table  # a plain tensor attribute: twins when its sizes are

    def forward(self, x):
        return self.lin(x) + self.table  # (B, N, WIDTH)


def test_a_spliced_block_whose_twin_read_a_plain_tensor_where_it_reads_a_buffer(monkeypatch):
    class Shifts(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("offsets", torch.zeros(WIDTH))
            tables = [torch.zeros(WIDTH), torch.zeros(WIDTH), self.offsets, torch.zeros(WIDTH)]
            self.blocks = nn.ModuleList(Shifted(table) for table in tables)

        def forward(self, x):
            for block in self.blocks:
                x = block(x)  # (B, N, WIDTH)
            return x

    model = Shifts().eval()

    def run():
        with torch.no_grad(), shapetrace.trace(model) as t:
            model(torch.rand(2, 5, WIDTH))
        return t

    reused, full = with_and_without_reuse(monkeypatch, run)
    assert reused.symbolic.reused_calls == 2  # blocks 2 and 3, from block 1
    assert everything(reused) == everything(full) and exact(reused) == exact(full)
    # the model's buffer has its own sizes (a number); block 2's twin added a plain tensor there
    assert [op.inputs[1].expr for op in reused.ops if op.op == "+"] == ["(WIDTH?,)", "(WIDTH?,)", "(24,)", "(WIDTH?,)"]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_examples_give_the_same_expressions_with_reuse(monkeypatch, examples, name):
    def run():
        with shapetrace.trace() as t:
            getattr(examples.load(name), EXAMPLES[name])()
        return t

    reused, full = with_and_without_reuse(monkeypatch, run)
    assert everything(reused) == everything(full)


def test_blocks_that_differ_are_not_reused(monkeypatch):
    class Window(nn.Module):
        def __init__(self, window: int) -> None:
            super().__init__()
            self.window = window  # a hyperparameter: compared
            self.lin = nn.Linear(8, 8)

        def forward(self, x):
            return self.lin(x[:, : self.window])  # (B, min(T, window), 8)

    class Windows(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.short, self.long, self.again = Window(4), Window(16), Window(16)

        def forward(self, x):
            return self.short(x), self.long(x), self.again(x)

    model = Windows()
    with shapetrace.trace(model, dims="B T D") as t:
        model(torch.rand(2, 16, 8))  # T = 16 = window: the same concrete sizes, other expressions
    outputs = {call.path: call.outputs[0].expr for call in t.modules if call.path}
    # the Linear fixes D to 8 (D by value only); `x[:, :16]` is 16 rows, whatever T is
    assert outputs["short.lin"] == "(B, 4, D?)" and outputs["long.lin"] == outputs["again.lin"] == "(B, 16, D?)"
    assert [s.dim for s in t.specializations] == ["D"]  # torch's own linear also fixed T, through its reshape
    assert t.symbolic.reused_calls == 1  # `again` from `long`, never from `short`


def test_a_block_called_on_other_sizes_runs_again():
    class Pyramid(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 1)
            self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())

        def forward(self, x):
            a = self.block(self.stem(x))  # (B, 4, H, W)
            b = self.block(F.max_pool2d(a, 2))  # (B, 4, H//2, W//2)
            return self.block(F.max_pool2d(b, 2))  # (B, 4, H//4, W//4)

    model = Pyramid()
    with shapetrace.trace(model, dims="B C H W") as t:
        model(torch.rand(2, 3, 16, 16))
    assert [c.outputs[0].expr for c in t.modules if c.path == "block"] == [
        "(B, 4, H, W)", "(B, 4, H/2, W/2)", "(B, 4, H/4, W/4)",  # 16 is divisible by 4
    ]  # fmt: skip
    assert t.symbolic.reused_calls == 0


def test_gpt2_layers_from_a_config_are_reused_with_the_same_expressions(monkeypatch):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=4, n_head=2, n_embd=32, vocab_size=100, n_positions=32)
    model = transformers.GPT2LMHeadModel(config).eval()
    ids = torch.randint(0, 100, (2, 7))

    def run():
        with torch.no_grad(), shapetrace.trace(model, dims={"input_ids": "B T"}) as t:
            model(input_ids=ids)
        return t

    reused, full = with_and_without_reuse(monkeypatch, run)
    assert everything(reused) == everything(full)
    assert reused.symbolic.state == "ran" and reused.symbolic.reused_calls >= 3
    assert reused.ops[-1].outputs[0].expr == "(B, T, 100)"


def test_vit_layers_from_a_config_are_reused_with_the_same_expressions(monkeypatch):
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                                    intermediate_size=64, image_size=32, patch_size=8)  # fmt: skip
    model = transformers.ViTModel(config).eval()
    images = torch.rand(2, 3, 32, 32)

    def run():
        with torch.no_grad(), shapetrace.trace(model, dims="B C H W") as t:
            model(images)
        return t

    reused, full = with_and_without_reuse(monkeypatch, run)
    assert everything(reused) == everything(full)
    assert reused.symbolic.reused_calls >= 3


def test_trace_shapes_reuses_identical_blocks_of_the_model(monkeypatch):
    with torch.device("meta"):
        model = Stack(depth=8)

    def run():
        return shapetrace.trace_shapes(model, shapetrace.TensorSpec("B N", dtype=torch.long), B=2, N=64)

    reused = run()
    with monkeypatch.context() as patched:
        patched.setattr(shapes, "model_groups", lambda *args: {}, raising=False)
        import shapetrace.symbolic.reuse as reuse_module

        patched.setattr(reuse_module, "model_groups", lambda *args: {})
        full = run()
    assert everything(reused) == everything(full)
    assert reused.ops[-1].outputs[0].expr == "(B, N, 50)"
    assert len(reused.ops) == len(full.ops) and [op.module for op in reused.ops] == [op.module for op in full.ops]
    assert [op.line for op in reused.ops] == [op.line for op in full.ops]
