"""Names without options: a forward's own statements (``B, C, H, W = x.shape``), jaxtyping hints
on any module's forward, generated names for dims nothing names; and numbers the pass computed
never take the name of a dim that is symbolic there."""

from __future__ import annotations

import linecache
import os

import torch
from jaxtyping import Float
from torch import nn

import shapetrace
from shapetrace.symbolic import naming


class Pool(nn.Module):
    def forward(self, x):
        B, C, H, W = x.shape
        return nn.functional.avg_pool2d(x, 2)


def test_a_tensor_made_before_the_block_is_named_by_the_forwards_statement():
    model, x = Pool(), torch.rand(8, 3, 32, 24)
    with shapetrace.trace(model) as t:
        model(x)
    assert t.ops[0].outputs[0].expr == "(B, C, H/2, W/2)"
    assert t.ops[0].outputs[0].expr_exact == "(B, C, H//2, W//2)"
    assert t.dims == {"B": 8, "C": 3, "H": 32, "W": 24}
    assert t.symbolic.state == "ran" and t.symbolic.divisible == {"H": 2, "W": 2}


def test_the_readme_in_code_example(examples):
    model = examples.load("patch_embed").PatchEmbedding(img_size=128)
    x = torch.rand(8, 3, 128, 128)
    with shapetrace.trace(model) as t:
        model(x)
    conv = t.ops[0]
    assert conv.op == "conv2d" and conv.outputs[0].shape == (8, 512, 4, 4)
    # B, C, H, W from `B, C, H, W = x.shape`; 512 is the script's `D = 512` by value: a guess
    assert conv.outputs[0].expr == "(B, D?, H/32, W/32)"
    assert t.ops[-1].outputs[0].expr == "(B, H*W/1024 + 1, D?)"


class Tokens(nn.Module):
    def forward(self, idx, x):
        b, t = idx.size()
        N = x.shape[1]  # noqa: F841 - names the dim
        D = x.size(-1)  # noqa: F841 - names the dim
        return x[:, :t] + idx[..., None]


def test_size_reads_and_single_dims_name_arguments():
    model, idx, x = Tokens(), torch.zeros(2, 5, dtype=torch.long), torch.rand(2, 7, 6)
    with shapetrace.trace(model) as t:
        model(idx, x)
    assert [m.expr for m in t.modules[0].inputs] == ["(b, t)", "(b, N, D)"]
    assert t.ops[-1].outputs[0].expr == "(b, t, D)"


class Hinted(nn.Module):
    def forward(self, tokens: Float[torch.Tensor, "batch seq width"]):
        return tokens.mean(-1)


def test_jaxtyping_hints_on_a_submodule_name_the_roots_dims():
    model = nn.Sequential(nn.Identity(), Hinted())
    x = torch.rand(4, 9, 6)
    with shapetrace.trace(model) as t:
        model(x)
    assert t.ops[-1].outputs[0].expr == "(batch, seq)"
    assert [m.expr for m in t.modules[0].inputs] == ["(batch, seq, width)"]
    assert set(t.dims) == {"batch", "seq", "width"}


def test_dims_no_source_names_get_stable_generated_names():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
    first, second = torch.rand(3, 5, 4), torch.rand(3, 5, 4)
    with shapetrace.trace(model) as t:
        model(first)
        model(second)  # another tensor of that shape: the same names
    outputs = [op.outputs[0].expr for op in t.ops if op.op == "relu"]
    assert outputs == ["(d0, d1, 8)", "(d0, d1, 8)"]
    assert t.dims["d0"] == 3 and t.dims["d1"] == 5


def test_a_forwards_own_names_hold_per_call():
    model = Pool()
    small, wide = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 12)
    with shapetrace.trace(model) as t:
        model(small)
        model(wide)  # H and W are other sizes here: still this forward's H and W
    assert [op.outputs[0].expr for op in t.ops] == ["(B, C, H/2, W/2)", "(B, C, H/2, W/2)"]
    assert t.dims == {"B": 2, "C": 3, "H": 8, "W": 8}
    assert not t.symbolic.notes


class Stem(nn.Module):
    """64 channels on 64 x 64 images, 4 latent channels with a batch of 4."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, padding=1)
        self.to_latent = nn.Conv2d(64, 4, 3, stride=2, padding=1)

    def forward(self, x):
        h = self.conv(x)
        return self.to_latent(h)


def test_a_computed_number_never_takes_the_name_of_a_symbolic_dim():
    model = Stem()
    with shapetrace.trace(model, dims="B C H W") as t:
        model(torch.rand(4, 3, 64, 64))
    conv, latent = (op.outputs[0].expr for op in t.ops if op.op == "conv2d")
    assert conv == "(B, 64, H, W)"  # not (B, H, H, W)
    assert latent == "(B, 4, H/2, W/2)"  # not (B, B, ...); the exact form keeps the stride-2 conv
    assert next(op for op in t.ops if op.module == "to_latent").outputs[0].expr_exact == (
        "(B, 4, (H - 1)//2 + 1, (W - 1)//2 + 1)"
    )


def test_a_failing_ops_operands_keep_their_names_and_parameters_their_numbers():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 32, 3)
            self.conv2 = nn.Conv2d(16, 32, 3)  # expects 16 channels, gets 32

        def forward(self, x):
            return self.conv2(self.conv1(x))

    model = Net()
    try:
        with shapetrace.trace(model, dims="B C H W") as t:
            model(torch.rand(8, 3, 30, 30))
    except RuntimeError:
        pass
    failed = t.ops[-1]
    assert failed.failed and [m.expr for m in failed.inputs] == ["(B, 32, H - 2, W - 2)", "(32, 16, 3, 3)", "(32,)"]
    first = t.ops[-2]  # C is 3, fixed by conv1: a 3x3 kernel is still (32, 3, 3, 3), not (32, C?, C?, C?)
    assert first.inputs[1].expr == "(32, 3, 3, 3)"



def test_a_files_text_is_read_once_while_linecache_holds_it(tmp_path):
    """The naming caches key on a file's text: the same string object while :mod:`linecache`
    holds the same lines (no new join, hash and comparison of the whole file per module call),
    and the new text once linecache reads the file again."""
    path = tmp_path / "model_source.py"
    path.write_text("def forward(self, x):\n    B, C = x.shape\n    return x\n")
    filename = str(path)
    first = naming._source(filename)
    assert naming._source(filename) is first and "B, C = x.shape" in first
    path.write_text("def forward(self, x):\n    N, D = x.shape\n    return x\n")
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    linecache.checkcache(filename)
    changed = naming._source(filename)
    assert "N, D = x.shape" in changed and naming._source(filename) is changed


SOURCE = '''import torch


class Decorated(torch.nn.Module):
    @torch.no_grad()
    def forward(self, x):
        """A docstring whose second line
starts at column 0."""
        B, C, H, W = x.shape
        return x

    def other(self, y):  # the next method: not read
        N, D = y.shape


def forward_of_a_module(module, tokens):
    b, t = tokens.shape
    return tokens
'''


def test_a_forward_is_parsed_alone_from_its_first_decorator_to_its_end():
    """Only the forward's block is parsed (a whole library file was a quarter of a UNet's first
    pass): a decorated method with a string at column 0, a top-level function; a line that starts
    no block of its own gives nothing."""
    method = naming._function_at(SOURCE, 5)
    assert method.name == "forward" and len(method.body) == 3
    assert dict(naming._statement_specs("model.py", 5, SOURCE))["x"].names == ("B", "C", "H", "W")
    assert naming._function_at(SOURCE, 16).name == "forward_of_a_module"
    assert dict(naming._statement_specs("model.py", 16, SOURCE))["tokens"].names == ("b", "t")
    assert naming._function_at(SOURCE, 9) is None  # a statement inside forward
