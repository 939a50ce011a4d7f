"""Ops whose outputs carry their inputs' sizes are answered without torch's symbolic reasoning
(shapetrace/symbolic/carried.py): the pass gives the expressions, specialisations and verdicts a
replay running every op in torch gives, and each condition that lets torch's run tell more sends
the op to torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_symbolic_reuse import (  # a sibling test module (pytest puts tests/symbolic on sys.path)
    EXAMPLES,
    everything,
    with_and_without,
)
from test_symbolic_static_evaluation import DenseStage, transformers_layout
from torch import nn

import shapetrace
from shapetrace._private import torch_symbolic as ts
from shapetrace.symbolic import bridge, engine
from shapetrace.symbolic.carried import carried
from shapetrace.symbolic.dims import Names, symbol


def with_and_without_carrying(monkeypatch, run) -> tuple:
    """Carried ops answered directly, then every op run in torch."""
    off = lambda *args: None  # noqa: E731
    return with_and_without(monkeypatch, run, (bridge, "carried", off), (engine, "carried", off))


class BasicBlock(nn.Module):
    """ResNet's: in-place ReLUs and ``out += identity`` on the outputs of carried ops."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)
        self.conv2, self.bn2 = nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (B, C, H, W)
        out = self.bn2(self.conv2(out))  # (B, C, H, W)
        out += x  # (B, C, H, W)
        return self.relu(out)  # (B, C, H, W)


class Stage(nn.Module):
    """A strided stem, two basic blocks, a head over flattened pixels (linear, layer_norm, cat)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(BasicBlock(8), BasicBlock(8))
        self.norm = nn.LayerNorm(8)
        self.proj = nn.Linear(8, 16)
        self.cls = nn.Parameter(torch.zeros(1, 1, 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))  # (B, 8, H/2, W/2)
        tokens = self.norm(x.flatten(2).transpose(1, 2))  # (B, H*W/4, 8)
        tokens = F.gelu(self.proj(tokens)) * 0.5  # (B, H*W/4, 16)
        return torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1)  # (B, H*W/4 + 1, 16)


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "autograd"])
def test_a_conv_stage_gives_what_torch_alone_gives(monkeypatch, grad):
    model = Stage().eval()
    images = torch.rand(2, 3, 32, 24)

    def run():
        with torch.set_grad_enabled(grad), shapetrace.trace(model, dims="B C H W") as t:
            model(images)
        return t

    first, alone = with_and_without_carrying(monkeypatch, run)
    assert everything(first) == everything(alone)
    assert first.symbolic.state == "ran"
    assert first.ops[-1].outputs[0].expr == "(B, H*W/4 + 1, 16)"


def test_in_place_ops_on_reused_outputs_run_under_autograd():
    """A memoised op's outputs under autograd are views, not leaves: ``out += identity`` on one
    works as on torch's own output (it stopped the replay of every ResNet traced with grad)."""
    model = nn.Sequential(BasicBlock(4), BasicBlock(4)).eval()
    with shapetrace.trace(model, dims="B C H W") as t:
        model(torch.rand(2, 4, 8, 8))
    assert t.symbolic.state == "ran", t.symbolic.reason
    assert t.ops[-1].outputs[0].expr == "(B, C?, H, W)"  # the first conv fixed C to 4


def test_a_dense_conv_stage_gives_what_torch_alone_gives(monkeypatch):
    model = DenseStage().eval()
    images = torch.rand(2, 3, 64, 48)

    def run():
        with torch.no_grad(), shapetrace.trace(model, dims="B C H W") as t:
            model(images)
        return t

    first, alone = with_and_without_carrying(monkeypatch, run)
    assert everything(first) == everything(alone)
    assert first.symbolic.state == "ran"


class Recurrent(nn.Module):
    """Embeddings through a GRU (batch first), a bidirectional LSTM with projections (time first),
    attention-style pooling over time, and an adaptive pool."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.gru = nn.GRU(16, 24, num_layers=2, batch_first=True)
        self.lstm = nn.LSTM(24, 32, bidirectional=True, proj_size=8)
        self.pool = nn.AdaptiveAvgPool1d(4)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x, _ = self.gru(self.embed(tokens))  # (B, T, 24)
        y, (h, c) = self.lstm(x.transpose(0, 1).contiguous())  # (T, B, 16), (2, B, 8), (2, B, 32)
        scores = F.softmax(y.sum(-1), dim=0)  # (T, B)
        pooled = (y * scores[..., None]).sum(0)  # (B, 16)
        return self.pool(pooled[:, None, :]) + h.mean(0)[:, :4, None].transpose(1, 2)  # (B, 1, 4)


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "autograd"])
def test_recurrent_layers_keep_the_time_dim_that_torch_fixes(monkeypatch, grad):
    """torch's fake GRU and LSTM unroll the time loop, which fixes T to its traced size; the
    carried ones keep T, and everything else is what torch gives."""
    model = Recurrent().eval()
    tokens = torch.randint(0, 50, (3, 11))

    def run():
        with torch.set_grad_enabled(grad), shapetrace.trace(model, dims="B T") as t:
            model(tokens)
        return t

    first, alone = with_and_without_carrying(monkeypatch, run)
    assert first.symbolic.state == alone.symbolic.state == "ran"
    assert first.specializations == [] and [s.dim for s in alone.specializations] == ["T"]
    by_op = {op.op: op.outputs for op in first.ops}
    assert [m.expr for m in by_op["gru"]] == ["(B, T, 24)", "(2, B, 24)"]
    assert [m.expr for m in by_op["lstm"]] == ["(T, B, 16)", "(2, B, 8)", "(2, B, 32)"]
    assert first.ops[-1].outputs[0].expr == "(B, 1, 4)"
    unfixed = [[[e.replace("T?", "T") for e in exprs] for exprs in op] for op in everything(alone)[0]]
    assert [[list(exprs) for exprs in op] for op in everything(first)[0]] == unfixed


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_examples_give_what_torch_alone_gives(monkeypatch, examples, name):
    def run():
        with shapetrace.trace() as t:
            getattr(examples.load(name), EXAMPLES[name])()
        return t

    first, alone = with_and_without_carrying(monkeypatch, run)
    assert everything(first) == everything(alone)


@pytest.mark.parametrize("kind", ["gpt2", "vit"])
def test_transformers_layouts_give_what_torch_alone_gives(monkeypatch, kind):
    model, inputs, dims = transformers_layout(kind)

    def run():
        with shapetrace.trace(model, dims=dims) as t:  # autograd on, as a script runs
            model(**inputs)
        return t

    first, alone = with_and_without_carrying(monkeypatch, run)
    assert everything(first) == everything(alone)
    assert first.symbolic.state == "ran"


# --- the conditions, one by one --------------------------------------------------------------------


@pytest.fixture
def fakes():
    """Fake tensors sized by B, C, H, W (2, 3, 8, 8): ``make(shape)``, a shape of names and numbers."""
    names = Names()
    for name, value in (("B", 2), ("C", 3), ("H", 8), ("W", 8)):
        names.bind(name, value, "test")
    run = bridge.FakeRun(names)

    def make(shape, requires_grad=False, dtype=torch.float32):
        canonical = tuple(symbol(s) if isinstance(s, str) else s for s in shape)
        concrete = tuple(names.all[s] if isinstance(s, str) else s for s in shape)
        return run.tensor(canonical, concrete, dtype, torch.device("cpu"), requires_grad)

    with run.running(grad=True):
        yield make


def _sizes(tensor):
    return tuple(str(size) for size in ts.size_exprs(tensor.shape))


def test_carried_outputs_have_the_inputs_sizes(fakes):
    x = fakes(("B", 16, "H", "W"))
    for func, args in [(F.relu, (x,)), (F.gelu, (x,)), (F.dropout, (x, 0.1, True)), (F.softmax, (x, -1)),
                       (F.batch_norm, (x, torch.zeros(16), torch.ones(16))), (F.group_norm, (x, 4)),
                       (torch.add, (x, fakes(("B", 16, "H", "W")))), (torch.Tensor.__mul__, (x, 0.5)),
                       (torch.mul, (x, fakes(("B", 16, 1, 1)))), (torch.mul, (fakes((16, 1, 1)), x))]:  # fmt: skip
        made = carried(func, args, {})
        assert made is not None, func
        out = made()
        assert out is not x and _sizes(out) == _sizes(x) and out.is_contiguous() and out.dtype == x.dtype
    tokens = fakes(("B", "H", 16))
    assert _sizes(carried(F.linear, (tokens, torch.zeros(32, 16)), {})()) == (*_sizes(tokens)[:2], "32")
    pieces = [fakes(("B", 4, "H")), fakes(("B", 12, "H"))]
    assert _sizes(carried(torch.cat, (pieces, 1), {})()) == (_sizes(pieces[0])[0], "16", _sizes(pieces[0])[2])
    size = fakes(("B", 16, "H", "W")).shape[2:]
    resized = carried(F.interpolate, (fakes(("B", 16, 4, 4)),), {"size": size, "mode": "bilinear"})()
    assert _sizes(resized) == (_sizes(x)[0], "16", *_sizes(x)[2:])
    assert _sizes(carried(F.adaptive_avg_pool2d, (x, (1, None)), {})()) == (_sizes(x)[0], "16", "1", _sizes(x)[3])
    for weight, padding, dilation in [((32, 16, 3, 3), 1, 1), ((32, 16, 1, 1), 0, 1), ((32, 16, 3, 5), "same", 2),
                                      ((32, 16, 3, 3), (2, 2), 2)]:  # fmt: skip
        conv = carried(F.conv2d, (x, torch.zeros(weight), None, 1, padding, dilation), {})
        assert _sizes(conv()) == (_sizes(x)[0], "32", *_sizes(x)[2:])
    assert _sizes(carried(F.conv2d, (x, torch.zeros(16, 1, 3, 3)), {"padding": 1, "groups": 16})()) == _sizes(x)
    moved = fakes(("B", 16, "H")).transpose(1, 2)  # layer_norm of any input is contiguous
    assert carried(F.layer_norm, (moved, (16,)), {})().is_contiguous()
    queries, keys = fakes(("B", 4, "H", 8)), fakes(("B", 4, "H", 8))
    scores = carried(torch.matmul, (queries, keys.transpose(-2, -1)), {})()  # attention's scores
    assert _sizes(scores) == (*_sizes(queries)[:3], _sizes(queries)[2]) and scores.is_contiguous()
    assert _sizes(carried(torch.Tensor.__matmul__, (scores, queries), {})()) == _sizes(queries)
    assert _sizes(carried(torch.bmm, (fakes(("B", "H", 8)), fakes(("B", 8, "W"))), {})()) == (
        *_sizes(fakes(("B", "H", 8)))[:2], _sizes(fakes(("B", 8, "W")))[2])
    flat = fakes(("B", 16))  # GPT-2's Conv1D: addmm(bias, x.view(-1, 16), weight)
    for args, kwargs in [((torch.zeros(24), flat, torch.zeros(16, 24)), {}),
                         ((torch.zeros(1, 24), flat, torch.zeros(16, 24)), {"beta": 0.5, "alpha": 2})]:  # fmt: skip
        ours, torchs = carried(torch.addmm, args, kwargs)(), torch.addmm(*args, **kwargs)
        assert _sizes(ours) == _sizes(torchs) == (_sizes(flat)[0], "24") and ours.stride() == torchs.stride()
    assert carried(torch.addmm, (torch.zeros(24), flat, torch.zeros(8, 24)), {}) is None  # 16 against 8: torch's
    assert carried(torch.addmm, (torch.zeros(24), fakes(("B", "H")), torch.zeros(8, 24)), {}) is None  # H against 8
    assert carried(torch.addmm, (torch.zeros(3), flat, torch.zeros(16, 24)), {}) is None  # a bias that cannot add


def test_in_place_forms_return_their_operand(fakes):
    x = fakes(("B", 16, "H"))
    assert carried(F.relu, (x, True), {})() is x
    assert carried(F.relu, (x,), {"inplace": True})() is x
    assert carried(torch.Tensor.__iadd__, (x, fakes(("B", 16, "H"))), {})() is x
    assert carried(F.dropout, (x, 0.1, True), {})() is not x  # training=True is not inplace=True


def test_ops_whose_sizes_torch_could_tell_more_about_run_in_torch(fakes):
    x = fakes(("B", "C", "H"))
    assert carried(F.batch_norm, (x, torch.zeros(3), torch.ones(3)), {}) is None  # C is checked against 3
    assert carried(F.linear, (x, torch.zeros(4, 3)), {}) is None  # H is checked against 3
    assert carried(F.layer_norm, (x, (3,)), {}) is None
    assert carried(torch.add, (x, fakes(("B", 1, "W"))), {}) is None  # broadcasting where not 1
    assert carried(torch.Tensor.__iadd__, (fakes(("B", "C", 1)), x), {}) is None  # torch refuses
    assert carried(torch.add, (x, fakes(("B", "C", "W"))), {}) is None  # Eq(H, W) would be a guard
    assert carried(torch.cat, ([x, fakes(("B", "C", "W"))], 2), {}) is None  # a symbolic dim concatenated
    assert carried(torch.cat, ([x, x], 1), {"axis": 0}) is None
    assert carried(F.softmax, (x, -1), {"dtype": torch.float64}) is None  # another dtype
    assert carried(torch.add, (x, fakes(("B", "C", "H"), dtype=torch.float64)), {}) is None  # promotion
    assert carried(F.relu, (fakes(("B", "C", "H"), dtype=torch.int64),), {}) is None
    strided = x[:, ::2].transpose(1, 2)  # not dense, nor ordered: dense in the order of its strides, as torch's
    assert ts.size_exprs(carried(F.relu, (strided,), {})().stride()) == ts.size_exprs(F.relu(strided).stride())
    assert carried(F.softmax, (x.transpose(1, 2), -1), {}) is None  # a softmax's output is contiguous
    assert carried(F.instance_norm, (fakes(("B", 3, "H", "W")).transpose(2, 3),), {}) is None
    cut, whole = x[:, :, :2], fakes(("B", "C", 2))  # cut along H: the first operand decides the order, as in torch
    assert ts.size_exprs(carried(torch.add, (cut, whole), {})().stride()) == ts.size_exprs((cut + whole).stride())
    assert carried(torch.add, (x, x), {"out": x}) is None
    # a conv on symbolic channels is carried with torch's check of them (tests/symbolic/test_carried_more.py)
    assert carried(F.interpolate, (fakes(("B", "C", 4, 4)),), {"scale_factor": 2.0, "mode": "bicubic"}) is None  # bicubic by a scale: torch's
    rows = fakes(("B", "H", 8))
    assert carried(torch.matmul, (rows, fakes(("B", "W", "H"))), {}) is None  # Eq(8, W): torch's question
    assert carried(torch.matmul, (rows, fakes((1, 8, "H"))), {}) is None  # batch dims that broadcast
    assert carried(torch.matmul, (rows, fakes((8, "H"))), {}) is None  # a 2-d operand broadcasts too
    assert carried(torch.matmul, (rows, fakes((8,))), {}) is None  # a vector
    assert carried(torch.bmm, (fakes(("H", 8)), fakes((8, "H"))), {}) is None  # bmm needs 3 dims: torch says so
    assert carried(torch.matmul, (rows, fakes(("B", 8, "H"), dtype=torch.float64)), {}) is None


def test_under_autograd_outputs_are_never_leaves(fakes):
    leaf = fakes(("B", 16, "H"), requires_grad=True)
    assert carried(F.relu, (leaf,), {}) is None  # its output must not be a leaf: torch's is not
    inner = leaf * 2  # not a leaf
    out = carried(F.relu, (inner,), {})()
    assert out.requires_grad and not out.is_leaf
    out += 1  # an in-place op works, as on torch's output
    tokens = fakes(("B", "H", 16))
    made = carried(F.linear, (tokens, torch.zeros(8, 16, requires_grad=True)), {})()  # a weight needs grad
    assert made.requires_grad and not made.is_leaf


def test_parameters_of_carried_ops_get_no_fake_copy(monkeypatch):
    """A carried op reads its weights' sizes, dtype and device from the real parameters: the
    replay makes fake copies only of what an op torch runs receives (the channels-last conv's)."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 16, 3, stride=2).to(memory_format=torch.channels_last)).eval()  # fmt: skip
    copied = []
    fake_of = ts.fake_of
    monkeypatch.setattr(ts, "fake_of", lambda mode, tensor: (copied.append(tensor), fake_of(mode, tensor))[1])
    B, H, W = 2, 32, 32
    with torch.no_grad(), shapetrace.trace(model) as t:
        model(torch.rand(B, 3, H, W))
    assert [op.outputs[0].expr for op in t.ops[1:]] == ["(B, 8, H, W)"] * 3 + ["(B, 16, H/2 - 1, W/2 - 1)"]
    strided = model[3]
    assert {id(c) for c in copied} == {id(strided.weight), id(strided.bias)}


def test_a_permuted_input_keeps_its_layout_as_in_torch(fakes):
    """Activations, dropout and ``x + y`` on two like operands keep a transposed or permuted
    input's layout (torch's ``empty_like``), batch and group norms a channels-last one: the
    carried output has the strides torch's has. A batch norm of another permutation runs in
    torch; a group norm of a 3-d one is contiguous, as torch's (test_carried_spatial.py)."""
    channels_last = fakes(("B", "H", "W", 16)).permute(0, 3, 1, 2)  # (B, 16, H, W), channels last
    tokens = fakes(("B", "H", 16)).transpose(1, 2)  # (B, 16, H): a transposed sequence
    weights = torch.ones(16), torch.zeros(16)
    cases = [(F.relu, (channels_last,)), (F.gelu, (tokens,)), (F.dropout, (tokens, 0.1, True)),
             (F.batch_norm, (channels_last, *weights)), (F.group_norm, (channels_last, 4)),
             (torch.add, (channels_last, channels_last * 2)),
             (torch.Tensor.__mul__, (tokens, 0.5))]  # fmt: skip
    for func, args in cases:
        made = carried(func, args, {})
        assert made is not None, func
        ours, torchs = made(), func(*args)
        assert ts.size_exprs(ours.shape) == ts.size_exprs(torchs.shape), func
        assert ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride()) == ts.size_exprs(args[0].stride()), func
    grouped = carried(F.group_norm, (tokens, 8), {})()  # torch makes it contiguous
    assert grouped.is_contiguous() and ts.size_exprs(grouped.stride()) == ts.size_exprs(F.group_norm(tokens, 8).stride())
    assert carried(F.batch_norm, (fakes(("B", "H", 16, "W")).transpose(1, 2), *weights), {}) is None


def test_elementwise_math_and_reductions_are_what_torch_makes(fakes):
    """Elementwise math (``x ** 2``, ``rsqrt``), and reductions along dims given (an RMSNorm's
    ``x.pow(2).mean(-1, keepdim=True)``): the sizes and strides torch's fake run gives."""
    x = fakes(("B", "H", 16))
    cases = [(torch.rsqrt, (x,)), (torch.Tensor.__neg__, (x,)), (torch.exp, (x,)), (torch.Tensor.sqrt, (x,)),
             (torch.Tensor.pow, (x, 2)), (torch.Tensor.__pow__, (x, 0.5)), (torch.pow, (x, 3)),
             (torch.Tensor.mean, (x, -1, True)), (torch.mean, (x, 1)), (torch.Tensor.sum, (x, (1, 2), True)),
             (torch.amax, (x, -1)), (torch.Tensor.amin, (x, [0, -1]))]  # fmt: skip
    for func, args in cases:
        made = carried(func, args, {})
        assert made is not None, func
        ours, torchs = made(), func(*args)
        assert ts.size_exprs(ours.shape) == ts.size_exprs(torchs.shape), func
        assert ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride()), func
        assert ours.dtype == torchs.dtype, func
    assert carried(torch.Tensor.pow, (x, x), {}) is None  # a tensor exponent broadcasts
    assert carried(torch.Tensor.sum, (x,), {}) is None  # every dim: torch's
    assert carried(torch.Tensor.sum, (x, -1), {"dtype": torch.float64}) is None
    assert carried(torch.Tensor.mean, (x.transpose(1, 2), -1), {}) is None  # a transposed input's reduction
    assert carried(torch.Tensor.sum, (fakes(("B", "H"), dtype=torch.int64), -1), {}) is None  # int sums promote


def test_views_to_sizes_given_are_views_with_torchs_sizes(fakes):
    """``view``/``reshape`` of a contiguous tensor whose new sizes multiply to its own, as
    written, or with a -1 that is a number or one of its sizes: a view of it with the sizes and
    strides torch's gives; a -1 that divides sizes runs in torch."""
    x = fakes(("B", "H", 64))
    batch, rows, _ = x.shape
    cases = [(torch.Tensor.view, (x, batch, rows, 4, 16)), (torch.Tensor.reshape, (x, (batch, -1, 4, 16))),
             (torch.reshape, (x, [batch, rows, -1])), (torch.Tensor.view, (x, -1, 64)),
             (torch.Tensor.view, (fakes(("B", "H", 4, 16)), batch, rows, 64))]  # fmt: skip
    for func, args in cases:
        made = carried(func, args, {})
        assert made is not None, args[1:]
        ours, torchs = made(), func(*args)
        assert ts.size_exprs(ours.shape) == ts.size_exprs(torchs.shape), args[1:]
        assert ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride()), args[1:]
        assert ours.is_contiguous() and torchs.is_contiguous() and ours._base is x or ours._base is args[0]
    assert carried(torch.Tensor.view, (x, -1, 32), {}) is None  # B*H*2: dividing sizes is torch's
    assert carried(torch.Tensor.view, (x, batch, 4, 16, rows), {}) is not None  # any order of the same product
    assert carried(torch.Tensor.view, (x, batch, rows, 8, 16), {}) is None  # 128 != 64: torch raises
    assert carried(torch.Tensor.reshape, (x.transpose(1, 2), batch, -1), {}) is None  # it would copy
    assert carried(torch.Tensor.view, (x, torch.float16), {}) is None


def test_inputs_cut_from_contiguous_tensors_get_torchs_contiguous_outputs(fakes):
    """A chunk, a split or ``x[..., :n]`` of a contiguous tensor (GEGLU's gate, adaLN's shift and
    scale): an activation or arithmetic on it makes a new contiguous tensor, as torch does."""
    a, gate = fakes(("B", "H", 256)).chunk(2, dim=-1)
    middle = fakes(("B", 6, "H", 4)).chunk(3, dim=1)[1]
    scale = fakes(("B", 768)).chunk(6, dim=1)[2][:, None]  # (B, 1, 128), strides (768, 128, 1)
    tokens = fakes(("B", "H", 128))
    cases = [(F.gelu, (gate,)), (torch.relu, (a,)), (F.softmax, (a, -1)), (torch.exp, (a,)),
             (torch.Tensor.relu, (middle,)), (F.silu, (middle,)), (torch.Tensor.__mul__, (a, gate)),
             (torch.Tensor.__mul__, (a, 2)), (torch.Tensor.__radd__, (scale, 1)), (torch.add, (a, a)),
             (torch.Tensor.__mul__, (tokens, scale)), (torch.Tensor.__mul__, (scale, tokens)),
             (torch.mul, (tokens, a)), (torch.mul, (a, tokens))]  # fmt: skip
    for func, args in cases:
        made = carried(func, args, {})
        assert made is not None, (func, args)
        ours, torchs = made(), func(*args)
        assert _sizes(ours) == _sizes(torchs) and ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride()), func
        assert ours.is_contiguous() and ours.dtype == torchs.dtype
    conv = fakes(("B", 16, "H"))
    for func, args in [(F.gelu, (conv[:, :, :-1],)), (torch.relu, (conv[:, :, 1:],)), (F.softmax, (conv[:, :, :-1], -1)),
                       (F.silu, (fakes(("B", "H", "W")).chunk(2, dim=1)[0],)), (torch.exp, (conv[:, 2:, :-1],)),
                       (torch.relu, (fakes(("B", "H", 8))[:, :, ::2],)), (torch.relu, (fakes(("B", "H", "W"))[:, :, :3],))]:  # fmt: skip
        ours, torchs = carried(func, args, {})(), func(*args)  # cut along a symbolic dim (wav2vec2's conv padding)
        _as_torchs(ours, torchs, func)
        assert ours.is_contiguous()
    strided = conv[:, :, :-1].transpose(1, 2)  # strides not ordered outward: dense in their order, as torch's
    _as_torchs(carried(F.gelu, (strided,), {})(), F.gelu(strided), F.gelu)
    assert carried(F.gelu, (fakes(("B", 1, "H"))[:, :, :-1],), {}) is None  # a dim of size 1
    assert carried(F.dropout, (a, 0.1, False), {}) is None  # in eval mode torch returns its input as it is
    _as_torchs(carried(torch.relu, (a.transpose(1, 2),), {})(), torch.relu(a.transpose(1, 2)), "cut and transposed")
    assert carried(F.relu, (a, True), {})() is a and carried(torch.Tensor.__imul__, (a, gate), {})() is a  # in place


def test_a_cat_onto_an_empty_cache_is_a_contiguous_copy_as_in_torch(fakes):
    """``torch.cat([self.keys, key_states], dim=-2)`` with ``self.keys = torch.tensor([])`` (a
    KV cache's first update: torch skips a 1-d empty tensor whatever the other's dims)."""
    keys = fakes(("B", "H", 4, 8)).transpose(1, 2)  # (B, 4, H, 8), as attention's keys are
    for empty, other in [(torch.tensor([]), keys), (torch.tensor([]), fakes(("B", 4, "H", 8))), (fakes((0,)), keys)]:
        ours, torchs = carried(torch.cat, ([empty, other],), {"dim": -2})(), torch.cat([empty, other], dim=-2)
        assert _sizes(ours) == _sizes(torchs) == _sizes(other)
        assert ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride()) and ours is not other
    assert carried(torch.cat, ([torch.tensor([], dtype=torch.float64), keys],), {"dim": -2}) is None  # promotion
    assert carried(torch.cat, ([torch.tensor([]), torch.tensor([])], 0), {}) is None  # nothing left: torch's


def test_moved_and_cut_views_have_torchs_sizes_strides_and_offsets(fakes):
    """``transpose``, ``permute``, ``t``, ``unsqueeze``, ``split`` and ``chunk``: views of their
    input with its sizes and strides moved or cut, as torch's are (offsets included)."""
    x = fakes(("B", "H", 12))
    cases = [(torch.Tensor.transpose, (x, 1, 2)), (torch.transpose, (x, -1, 0)), (torch.Tensor.swapaxes, (x, 0, 1)),
             (torch.Tensor.permute, (x, 2, 0, 1)), (torch.permute, (x, (0, 2, 1))), (torch.Tensor.t, (fakes(("H", 4)),)),
             (torch.Tensor.unsqueeze, (x, 1)), (torch.unsqueeze, (x, -1)), (torch.Tensor.unsqueeze, (x, 0)),
             (torch.Tensor.unsqueeze, (x.transpose(0, 1), 2)), (torch.Tensor.transpose, (x.chunk(2, -1)[1], 1, 2)),
             (torch.Tensor.split, (x, 4, -1)), (torch.Tensor.split, (x, 5, 2)), (torch.split, (x, [3, 9], 2)),
             (torch.Tensor.chunk, (x, 3, -1)), (torch.chunk, (x, 5, 2)), (torch.Tensor.split, (x.transpose(1, 2), 6, 1))]  # fmt: skip
    for func, args in cases:
        made = carried(func, args, {})
        assert made is not None, (func, args[1:])
        ours, torchs = made(), func(*args)
        for mine, theirs in zip(*((o,) if isinstance(o, torch.Tensor) else o for o in (ours, torchs)), strict=True):
            assert _sizes(mine) == _sizes(theirs), (func, args[1:])
            assert ts.size_exprs(mine.stride()) == ts.size_exprs(theirs.stride()), (func, args[1:])
            assert ts.size_expr(mine.storage_offset()) == ts.size_expr(theirs.storage_offset()), (func, args[1:])
    assert carried(torch.Tensor.split, (x, 4, 1), {}) is None  # along a symbolic dim: torch's
    assert carried(torch.split, (x, [3, 8], 2), {}) is None  # sizes that do not add up: torch raises
    assert carried(torch.Tensor.transpose, (x, 1, 3), {}) is None  # out of range: torch raises
    assert carried(torch.Tensor.t, (x,), {}) is None
    leaf = fakes(("B", "H", 12), requires_grad=True)
    moved = carried(torch.Tensor.transpose, (leaf, 1, 2), {})()
    assert moved.requires_grad and moved._base is leaf  # under autograd, a view: gradients flow back


def test_a_piece_of_a_split_viewed_to_heads_and_made_contiguous_is_as_in_torch(fakes):
    """GPT-2's attention: ``q, k, v = qkv.split(D, dim=2)``, ``k.view(B, T, -1, d)``, and later
    ``out.transpose(1, 2).contiguous()``."""
    q, k, v = fakes(("B", "H", 36)).split(12, dim=2)
    batch, rows, _ = k.shape
    for func, args in [(torch.Tensor.view, (k, batch, rows, -1, 4)), (torch.Tensor.view, (v, (batch, rows, 3, 4))),
                       (torch.Tensor.reshape, (q, batch, rows, 2, 3, 2)), (torch.Tensor.view, (k, batch, rows, 12))]:  # fmt: skip
        ours, torchs = carried(func, args, {})(), func(*args)
        assert _sizes(ours) == _sizes(torchs) and ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride())
        assert ts.size_expr(ours.storage_offset()) == ts.size_expr(torchs.storage_offset())
    assert carried(torch.Tensor.view, (k, batch, -1, 4), {}) is None  # merging H into another dim: torch's
    assert carried(torch.Tensor.view, (k, batch, rows, 5, -1), {}) is None  # 12 is not a multiple of 5: torch raises
    heads = fakes(("B", 4, "H", 8)).transpose(1, 2)
    ours, torchs = carried(torch.Tensor.contiguous, (heads,), {})(), heads.contiguous()
    assert _sizes(ours) == _sizes(torchs) and ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride())
    plain = fakes(("B", "H", 8))
    assert carried(torch.Tensor.contiguous, (plain,), {})() is plain is plain.contiguous()  # already contiguous: itself


def test_indexing_with_colons_nones_and_numbers_is_a_view_as_in_torch(fakes):
    """``mask[:, None, None, :]``, ``x[..., 0]``, ``ids[None]``, slices of symbolic dims: views with
    torch's sizes, strides and offsets; negative steps, tensors and numbers on symbolic dims are
    torch's (tests/symbolic/test_carried_windows.py compares slices' guards too)."""
    x = fakes(("B", "H", 3, 8))
    mask = fakes(("B", "H"), dtype=torch.int64)
    cases = [(mask, (slice(None), None, None, slice(None))), (mask, None), (mask, (None, Ellipsis)),
             (x, (Ellipsis, 0)), (x, (slice(None), slice(None), -1)), (x, (Ellipsis, None)), (x, (None, slice(None), slice(None), 0)),
             (x, (slice(None), None, slice(None), 2, None)), (x.transpose(1, 2), (Ellipsis, 1, None)), (x, Ellipsis),
             (x, (slice(0, 2),)), (x, (slice(None), slice(1, None)))]  # fmt: skip
    for tensor, index in cases:
        ours, torchs = carried(torch.Tensor.__getitem__, (tensor, index), {})(), tensor[index]
        assert _sizes(ours) == _sizes(torchs), index
        assert ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride()), index
        assert ts.size_expr(ours.storage_offset()) == ts.size_expr(torchs.storage_offset()) and ours.dtype == torchs.dtype
    for index in [(slice(None), 0), (Ellipsis, 8), (Ellipsis, slice(None, None, -1))]:
        assert carried(torch.Tensor.__getitem__, (x, index), {}) is None, index


def test_slices_of_concrete_dims_are_views_as_in_torch(fakes):
    """``x[..., :d // 2]`` and ``x[..., d // 2:]`` (LLaMA's ``rotate_half``), steps, and slices of a
    transposed tensor: views with torch's sizes, strides and offsets."""
    x = fakes(("B", "H", 3, 32))
    heads = fakes(("B", "H", 4, 32)).transpose(1, 2)
    for tensor, index in [(x, (Ellipsis, slice(None, 16))), (x, (Ellipsis, slice(16, None))), (x, (Ellipsis, slice(None, None, 2))),
                          (x, (slice(None), slice(None), slice(1, 3), slice(5, 40, 3))), (x, (Ellipsis, slice(-8, None))),
                          (heads, (Ellipsis, slice(16, None))), (heads, (slice(None), slice(1, 2), None)), (x, (Ellipsis, slice(40, 50)))]:  # fmt: skip
        ours, torchs = carried(torch.Tensor.__getitem__, (tensor, index), {})(), tensor[index]
        _as_torchs(ours, torchs, index)


def test_integer_tensor_indices_gather_as_torch_does(fakes):
    """``padding_mask[batch_idx, kv_idx]`` (HF's mask functions), ``weight[position_ids]``, CLIP's
    ``hidden[arange(B), eos]``: a new contiguous tensor of the indices' broadcast sizes, then the
    indexed tensor's other dims; bool indices (data) and tensors among slices are torch's."""
    padding = fakes(("B", "H"), dtype=torch.bool)
    batch_idx, kv_idx = fakes(("B", 1, 1, 1), dtype=torch.int64), fakes((1, 1, 1, "H"), dtype=torch.int64)
    ids = fakes(("B", "H"), dtype=torch.int64)
    hidden = fakes(("B", "H", 16))
    rows, eos = fakes(("B",), dtype=torch.int64), fakes(("B",), dtype=torch.int32)
    table = torch.zeros(64, 16, requires_grad=True)  # a parameter: read for its sizes
    for tensor, index in [(padding, (batch_idx, kv_idx)), (table, ids), (hidden, (rows, eos)), (hidden, (ids,)),
                          (fakes((10, "H", 16)), (ids, kv_idx[0, 0])), (padding, (batch_idx, fakes((1, 1, 1, "W"), dtype=torch.int64)))]:  # fmt: skip
        made = carried(torch.Tensor.__getitem__, (tensor, index), {})
        assert made is not None, index
        _as_torchs(made(), tensor[index], index)
    for tensor, index in [(padding, (padding,)), (hidden, (slice(None), ids)), (hidden.transpose(0, 1), (rows,)),
                          (padding, (fakes(("B", 1)), fakes((1, "W"), dtype=torch.int64))),
                          (padding, (fakes(("B", "H"), dtype=torch.int64), fakes(("B", "W"), dtype=torch.int64))),
                          (hidden, (rows, rows, rows, rows))]:  # fmt: skip
        assert carried(torch.Tensor.__getitem__, (tensor, index), {}) is None, index


def test_an_operand_that_decides_the_layout_gives_it_as_in_torch(fakes):
    """``q * cos`` with LLaMA's transposed queries and a contiguous ``(1, 1, T, d)`` table, Whisper's
    ``residual + x`` on a transposed residual, ``attn_output + hidden`` on a contiguous first
    operand: torch's output has the first operand's layout, dense and with no dim of size 1."""
    q = fakes(("B", "H", 4, 32)).transpose(1, 2)  # (B, 4, H, 32)
    cos = fakes((1, 1, "H", 32))
    residual = fakes(("B", 16, "H")).transpose(1, 2)  # (B, H, 16)
    hidden = fakes(("B", "H", 16))
    inner = fakes(("B", "H", 4, 32), requires_grad=True).transpose(1, 2)  # not a leaf
    cases = [(torch.Tensor.__mul__, (q, cos)), (torch.Tensor.__add__, (q, q.contiguous())), (torch.add, (residual, hidden)),
             (torch.Tensor.__add__, (hidden, residual)), (torch.Tensor.__sub__, (residual, fakes((16,)))),
             (torch.Tensor.__mul__, (inner, cos)), (torch.Tensor.__add__, (fakes(("B", 16, "H", "W")).permute(0, 2, 3, 1), fakes(("B", "H", "W", 16))))]  # fmt: skip
    for func, args in cases:
        made = carried(func, args, {})
        assert made is not None, (func, args)
        _as_torchs(made(), func(*args), func)
    for func, args in [(torch.Tensor.__mul__, (cos, q)),  # the broadcast operand first: its strides decide some dims
                       (torch.Tensor.__gt__, (q, cos)),  # a bool output in another layout
                       (torch.Tensor.__mul__, (fakes(("B", 32, "H", 1)).permute(0, 3, 2, 1), cos)),  # a dim of size 1
                       (torch.Tensor.__mul__, (q[..., :16], cos[..., :16])), (torch.Tensor.__add__, (q, fakes((1, 1, "W", 32))))]:  # fmt: skip
        assert carried(func, args, {}) is None, (func, args)


def test_flatten_expand_and_embedding_are_what_torch_makes(fakes):
    """ViT's ``x.flatten(2)``, BERT's mask ``expand(B, 1, T, T)`` and its embeddings."""
    images = fakes(("B", 8, "H", "W"))
    mask = fakes(("B", 1, 1, "H"), dtype=torch.bool)
    batch, _, rows, cols = images.shape
    ids = fakes(("B", "H"), dtype=torch.int64)
    cases = [(torch.Tensor.flatten, (images, 2), {}), (torch.flatten, (images, 1), {}), (torch.flatten, (images,), {}),
             (torch.Tensor.flatten, (images,), {"start_dim": 1, "end_dim": 2}),
             (torch.Tensor.expand, (mask, batch, 1, rows, rows), {}), (torch.Tensor.expand, (mask, -1, 3, -1, -1), {}),
             (torch.Tensor.expand, (fakes((1, 8)), 2, batch, -1), {}), (torch.Tensor.expand, (mask, [batch, 1, cols, rows]), {}),
             (F.embedding, (ids, torch.zeros(10, 16)), {}), (F.embedding, (ids, torch.zeros(10, 16)), {"padding_idx": 0})]  # fmt: skip
    for func, args, kwargs in cases:
        made = carried(func, args, kwargs)
        assert made is not None, (func, args[1:], kwargs)
        ours, torchs = made(), func(*args, **kwargs)
        assert _sizes(ours) == _sizes(torchs) and ours.dtype == torchs.dtype, (func, args[1:])
        assert ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride()), (func, args[1:])
    assert carried(torch.Tensor.flatten, (images.transpose(1, 2), 1), {}) is None  # torch copies
    assert carried(torch.Tensor.expand, (images, batch, 8, cols, -1), {}) is None  # H against W: torch's question
    assert carried(torch.Tensor.expand, (mask, -1, 1, 1), {}) is None  # fewer sizes: torch raises
    assert carried(F.embedding, (ids, torch.zeros(10, 16)), {"max_norm": 1.0}) is None  # renormalises the weight
    assert carried(F.embedding, (fakes(("B", "H")), torch.zeros(10, 16)), {}) is None  # float ids: torch raises


def _as_torchs(ours, torchs, case):
    """The carried output is torch's: sizes, strides, offset, dtype, device, requires_grad."""
    assert _sizes(ours) == _sizes(torchs), case
    assert ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride()), case
    assert ts.size_expr(ours.storage_offset()) == ts.size_expr(torchs.storage_offset()), case
    assert (ours.dtype, ours.device, ours.requires_grad) == (torchs.dtype, torchs.device, torchs.requires_grad), case
    assert not ours.requires_grad or not ours.is_leaf, case


def test_views_of_other_layouts_have_torchs_strides(fakes):
    """``reshape``/``view`` of a tensor that is not contiguous: attention's ``out.reshape(B, -1,
    T, d)`` of the fused kernel's output, a U-Net's ``permute(0, 2, 3, 1).reshape(B, H*W, C)``:
    views with the strides torch's ``view`` computes; a reshape that would copy is torch's."""
    heads = fakes(("B", "H", 4, 8)).transpose(1, 2)  # (B, 4, H, 8), as attention's output
    batch, _, rows, _ = heads.shape
    images = fakes(("B", 16, "H", "W")).permute(0, 2, 3, 1)  # (B, H, W, 16)
    _, height, width, _ = images.shape
    columns = fakes(("W", "B", "H")).permute(1, 2, 0)  # (B, H, W), B and H nested
    merged = columns.reshape(batch * rows, -1)  # (B*H, W): a view in torch
    ids = fakes(("B", "H"), dtype=torch.int64)  # GPT-2's input_ids.view(-1, T): any dtype
    cases = [(torch.Tensor.reshape, (heads, batch, -1, rows, 8)), (torch.Tensor.view, (heads, batch, 4, rows, 8)),
             (torch.reshape, (images, (batch, height * width, 16))), (torch.Tensor.reshape, (images, batch, -1, 16)),
             (torch.Tensor.reshape, (heads, batch, 2, 2, rows, 8)), (torch.Tensor.view, (heads, batch, 4, rows, 2, 4)),
             (torch.Tensor.reshape, (columns, batch * rows, width)), (torch.Tensor.view, (merged, batch, rows, width)),
             (torch.Tensor.view, (ids, -1, rows))]  # fmt: skip
    for func, args in cases:
        made = carried(func, args, {})
        assert made is not None, args[1:]
        ours, torchs = made(), func(*args)
        _as_torchs(ours, torchs, args[1:])
        assert ours._base is not None and torchs._base is not None  # views
    assert carried(torch.Tensor.reshape, (heads, batch, rows, -1), {}) is None  # heads and rows swapped: a copy
    assert carried(torch.Tensor.reshape, (images, batch, height, -1), {}) is None  # W*16 over a permuted W: a copy
    transposed = fakes(("B", "W", "H")).transpose(1, 2)  # (B, H, W), H and W equal at the traced values
    assert carried(torch.Tensor.reshape, (transposed, batch, width, rows), {}) is None  # H against W: torch's


def test_attention_on_the_cpu_is_the_fused_kernels_output(fakes):
    """``F.scaled_dot_product_attention`` where torch picks its fused CPU kernel: the output has
    the query's sizes and strides (``empty_like``), with or without a mask; where it would pick
    the math kernel, or compare sizes, torch runs it."""
    attention = F.scaled_dot_product_attention
    q = fakes(("B", "H", 4, 8)).transpose(1, 2)  # (B, 4, H, 8)
    k = fakes(("B", "H", 4, 8)).transpose(1, 2)
    memory = fakes(("B", 4, "W", 8))  # contiguous keys of another length
    sliced = fakes(("B", "H", 96)).split(32, dim=-1)[0].view(*q.shape[:1], -1, 4, 8).transpose(1, 2)  # GPT-2's query
    cases = [((q, k, k), {}), ((q, k, k), {"is_causal": True, "scale": 0.5}),
             ((q, k, k), {"attn_mask": fakes(("B", 1, "H", "H"), dtype=torch.bool)}),
             ((q, k, k, fakes((1, 4, "H", "H"))), {}), ((q, k, k), {"attn_mask": fakes(("H", "H"), dtype=torch.bool)}),
             ((q, memory, memory), {"attn_mask": fakes(("B", 1, 1, "W"), dtype=torch.bool)}),
             ((fakes(("B", 4, "H", 8)), memory, memory), {"dropout_p": 0.0}), ((sliced, k, k), {"is_causal": True})]  # fmt: skip
    for args, kwargs in cases:
        made = carried(attention, args, kwargs)
        assert made is not None, kwargs
        _as_torchs(made(), attention(*args, **kwargs), kwargs)
    few = fakes(("B", "H", 2, 8)).transpose(1, 2)
    single = fakes(("B", 1, "H", 16))[..., :8]  # not dense, and a dim of size 1: torch's comparisons tie
    for args, kwargs in [((q, k, k), {"dropout_p": 0.1}), ((q, few, few), {"enable_gqa": True}), ((q, few, few), {}),
                         ((q, memory, fakes(("B", 4, "H", 8))), {}), ((q, k, fakes(("B", 4, "H", 4))), {}),
                         ((q, k, k), {"attn_mask": fakes(("B", "H", "H"), dtype=torch.bool)}),
                         ((q, k, k), {"attn_mask": fakes((1, 4, "H", "W"))}),
                         ((q, k, k), {"attn_mask": fakes((1, 4, "H", "H")).requires_grad_()}),
                         ((q, k, k), {"attn_mask": fakes((1, 4, "H", "H"), dtype=torch.int64)}),
                         ((q, k, k), {"attn_mask": fakes(("B", 1, "H", "H"), dtype=torch.bool), "is_causal": True}),
                         ((single, fakes(("B", 1, "H", 8)), fakes(("B", 1, "H", 8))), {}),
                         ((q, k, k.double()), {}), ((q[:, :, :, None, 0], k, k), {})]:  # fmt: skip
        assert carried(attention, args, kwargs) is None, kwargs
    leaf = fakes(("B", "H", 4, 8), requires_grad=True)
    inner = leaf.transpose(1, 2)  # a view of a leaf: not a leaf
    _as_torchs(carried(attention, (inner, k, k), {})(), attention(inner, k, k), "autograd")
    piece = fakes(("B", "H", 96), requires_grad=True).split(32, dim=-1)[0].view(*q.shape[:1], -1, 4, 8).transpose(1, 2)
    _as_torchs(carried(attention, (piece, k, k), {})(), attention(piece, k, k), "autograd, not dense")


# real tensors (parameters), made outside the fake mode the ``fakes`` fixture runs its test in
REAL = {"weight": torch.ones(16, requires_grad=True), "bias": torch.zeros(16)}


def test_masks_are_built_as_torch_builds_them(fakes):
    """What HF's masks and position buckets are made of: comparisons, ``&``/``|``/``~``, integer
    arithmetic, ``where``/``masked_fill`` with ``torch.finfo(dtype).min``, dtype conversions, on
    operands that broadcast each other as written (``(B, 1, 1, T)`` with ``(1, 1, T, T)``)."""
    positions = fakes(("H",), dtype=torch.int64)
    rows, columns = positions[:, None], positions[None, :]  # (H, 1), (1, H)
    relative = fakes(("H", "H"), dtype=torch.int64)
    query = fakes((1, 1, "H", 1), dtype=torch.int64)
    keys = fakes((1, 1, 1, "H"), dtype=torch.int64)
    causal = fakes((1, 1, "H", "H"), dtype=torch.bool)
    padding = fakes(("B", 1, 1, "H"), dtype=torch.bool)
    scores = fakes(("B", 4, "H", "H"))
    timesteps, freqs = fakes(("B", 1)), fakes((1, 16))
    true = torch.ones((), dtype=torch.bool, device=causal.device)
    ones = fakes(("B", "H"), dtype=torch.bool)
    minimum = torch.finfo(torch.float32).min
    cases = [(torch.Tensor.__ge__, (query, 0)), (torch.le, (keys, query)), (torch.Tensor.__lt__, (relative, 8)),
             (torch.Tensor.__gt__, (scores, 0.5)), (torch.eq, (scores, scores)), (torch.Tensor.__and__, (true, causal)),
             (torch.Tensor.__and__, (causal, padding)), (torch.Tensor.__or__, (padding, causal)),
             (torch.Tensor.__invert__, (ones,)), (torch.logical_not, (ones,)), (torch.logical_and, (ones, ones)),
             (torch.bitwise_and, (relative, relative)), (torch.Tensor.__xor__, (padding, True)),
             (torch.Tensor.__sub__, (columns, rows)), (torch.Tensor.__add__, (positions, 0)), (torch.mul, (relative, 16)),
             (torch.Tensor.__rsub__, (relative, 1)), (torch.Tensor.__neg__, (relative,)), (torch.abs, (relative,)),
             (torch.minimum, (relative, relative)), (torch.Tensor.__mul__, (timesteps, freqs)),
             (torch.Tensor.__mul__, (fakes((1, "H", 1)), fakes((16,)))), (torch.Tensor.__truediv__, (timesteps, freqs)),
             (torch.Tensor.__mul__, (REAL["weight"], fakes(("B", "H", 16)))),  # RMSNorm's weight * x
             (torch.Tensor.__add__, (fakes(("B", "H", 16)), REAL["bias"])),
             (torch.where, (causal, scores, minimum)), (torch.where, (padding, 0.0, scores)),
             (torch.where, (causal, relative, relative)), (torch.Tensor.masked_fill, (scores, padding, minimum)),
             (torch.masked_fill, (relative, causal[0, 0], 3)), (torch.Tensor.masked_fill, (padding, causal, False))]  # fmt: skip
    for func, args in cases:
        made = carried(func, args, {})
        assert made is not None, (func, args[1:])
        _as_torchs(made(), func(*args), (func, args[1:]))
    for func, args in [(torch.Tensor.__and__, (ones, fakes(("B", "W"), dtype=torch.bool))),  # H against W: torch's
                       (torch.Tensor.__ge__, (relative, fakes((8, 1), dtype=torch.int64))),  # H against 8
                       (torch.Tensor.__add__, (relative, fakes(("H", "H"), dtype=torch.int32))),  # promotion
                       (torch.Tensor.__and__, (causal, fakes((1, 1, "H", "H"), dtype=torch.int64))),
                       (torch.Tensor.__add__, (causal, 1)), (torch.Tensor.__add__, (relative, 0.5)),  # promotion
                       (torch.Tensor.__truediv__, (relative, 2)), (torch.Tensor.__lt__, (relative.t(), 8)),  # layout
                       (torch.Tensor.__and__, (padding.expand(-1, 1, 4, -1), true)),  # an expanded mask
                       (torch.where, (causal,)), (torch.where, (relative > 0, relative, 0.5)),
                       (torch.where, (relative, relative, relative)), (torch.Tensor.masked_fill, (relative, causal, 0.5)),
                       (torch.Tensor.masked_fill, (scores, padding, fakes(()))), (torch.add, (relative, relative)),
                       (torch.Tensor.__mul__, (REAL["weight"], REAL["bias"])),  # no fake operand: nothing to carry
                       (torch.Tensor.__mul__, (REAL["weight"].double(), fakes(("B", "H", 16))))]:  # fmt: skip
        kwargs = {"alpha": 2} if func is torch.add else {}
        assert carried(func, args, kwargs) is None, (func, args[1:])


def test_dtype_conversions_are_the_tensor_itself_or_torchs_copy(fakes):
    """``x.to(torch.bool)``, ``.float()``, ``.type_as(y)``: ``x`` itself in its own dtype and device,
    else a new tensor in the other dtype, as torch's; under autograd a float copy needs grad."""
    ids = fakes(("B", "H"), dtype=torch.int64)
    mask = fakes(("B", 1, 1, "H"), dtype=torch.bool)
    x = fakes(("B", "H", 16))
    cpu = torch.device("cpu")
    for func, args, kwargs in [(torch.Tensor.to, (ids,), {"device": cpu, "dtype": torch.bool}),
                               (torch.Tensor.to, (ids, torch.float32), {}), (torch.Tensor.to, (ids, cpu, torch.int32), {}),
                               (torch.Tensor.float, (ids,), {}), (torch.Tensor.bool, (ids,), {}),
                               (torch.Tensor.long, (mask,), {}), (torch.Tensor.int, (mask,), {}),
                               (torch.Tensor.half, (x,), {}), (torch.Tensor.type_as, (mask, x), {}),
                               (torch.Tensor.to, (mask, x), {})]:  # fmt: skip
        made = carried(func, args, kwargs)
        assert made is not None, (func, args[1:], kwargs)
        _as_torchs(made(), func(*args, **kwargs), (func, args[1:], kwargs))
    for func, args, kwargs in [(torch.Tensor.to, (x, torch.float32), {}), (torch.Tensor.to, (x,), {"device": cpu}),
                               (torch.Tensor.to, (x, "cpu"), {}), (torch.Tensor.float, (x,), {}),
                               (torch.Tensor.type_as, (x, x), {}), (torch.Tensor.bool, (mask,), {})]:  # fmt: skip
        assert carried(func, args, kwargs)() is args[0], (func, args[1:], kwargs)
        assert func(*args, **kwargs) is args[0]
    for func, args, kwargs in [(torch.Tensor.to, (x, torch.float64), {"copy": True}),
                               (torch.Tensor.to, (x, torch.float64), {"memory_format": torch.channels_last}),
                               (torch.Tensor.to, (x, "cuda"), {}), (torch.Tensor.to, (x.transpose(1, 2), torch.float64), {}),
                               (torch.Tensor.to, (x, torch.float64, True), {}),
                               (torch.Tensor.float, (ids,), {"memory_format": torch.preserve_format})]:  # fmt: skip
        assert carried(func, args, kwargs) is None, (func, args[1:], kwargs)
    inner = fakes(("B", "H", 16), requires_grad=True) * 2
    for func, args in [(torch.Tensor.double, (inner,)), (torch.Tensor.bool, (inner,)), (torch.Tensor.__gt__, (inner, 0))]:
        _as_torchs(carried(func, args, {})(), func(*args), func)


def test_factories_like_a_tensor_and_min_max_of_two_are_what_torch_makes(fakes):
    """T5's ``torch.full_like(x, 15)``, ``torch.zeros_like(x)``, ``torch.min(a, b)``, HF's
    ``q_idx.new_ones((), dtype=torch.bool)``: new tensors needing no grad, as torch's."""
    relative = fakes(("H", "H"), dtype=torch.int64)
    x = fakes(("B", "H", 16), requires_grad=True) * 2
    batch, rows, _ = x.shape
    cases = [(torch.full_like, (relative, 15), {}), (torch.zeros_like, (relative,), {}), (torch.ones_like, (x,), {}),
             (torch.empty_like, (x,), {"dtype": torch.bool}), (torch.full_like, (x, 0.5), {}),
             (torch.min, (relative, relative), {}), (torch.Tensor.max, (x, x), {}),
             (torch.Tensor.new_ones, (relative, ()), {"dtype": torch.bool}), (torch.Tensor.new_zeros, (x, (batch, 1, rows)), {}),
             (torch.Tensor.new_full, (x, [rows, 4], 2.0), {}), (torch.Tensor.new_empty, (relative, torch.Size([3])), {})]  # fmt: skip
    for func, args, kwargs in cases:
        made = carried(func, args, kwargs)
        assert made is not None, (func, args[1:], kwargs)
        _as_torchs(made(), func(*args, **kwargs), (func, args[1:], kwargs))
    for func, args, kwargs in [(torch.min, (relative, 1), {}), (torch.max, (x, -1), {}), (torch.Tensor.min, (x,), {}),
                               (torch.zeros_like, (x,), {"requires_grad": True}), (torch.full_like, (relative, relative), {}),
                               (torch.zeros_like, (x.transpose(1, 2),), {}), (torch.Tensor.new_ones, (x, 3, 4), {}),
                               (torch.Tensor.new_ones, (x, (3,)), {"device": "meta"}), (torch.Tensor.new_zeros, (x, (-1,)), {})]:  # fmt: skip
        assert carried(func, args, kwargs) is None, (func, args[1:], kwargs)


def test_positions_from_arange_are_what_torch_makes(fakes):
    """``torch.arange(seq_length)`` on a dim's size or an expression in dims (with torch's check
    that it is at least 0), ``arange(start=0, end=128, dtype=...)``: torch's 1-d tensor; a length torch computes from a symbolic start or step, or floats, are torch's."""
    batch, rows = fakes(("B", "H")).shape
    cpu = torch.device("cpu")
    for args, kwargs in [((rows,), {"device": cpu}), ((0, rows), {"dtype": torch.int64}), ((batch,), {}),
                         ((), {"start": 0, "end": 128, "dtype": torch.float32, "device": cpu}), ((3, 17, 4), {}),
                         ((9, 2, -3), {}), ((1,), {"device": cpu}), ((rows * 2,), {})]:  # fmt: skip
        made = carried(torch.arange, args, kwargs)
        assert made is not None, (args, kwargs)
        _as_torchs(made(), torch.arange(*args, **kwargs), (args, kwargs))
    for args, kwargs in [((1, rows), {}), ((0, rows, 2), {}), ((4.0,), {}), ((0, 8, 0), {}), ((5, 2), {}),
                         ((rows,), {"requires_grad": True}), ((rows,), {"device": "cpu"}), ((rows,), {"out": None})]:  # fmt: skip
        assert carried(torch.arange, args, kwargs) is None, (args, kwargs)
