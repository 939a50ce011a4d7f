"""Carried ops of transformers, MLP-mixers, recurrent and seq2seq models
(shapetrace/symbolic/carried.py): each output is checked against torch's own fake result (sizes,
strides, storage offset, dtype, device, requires_grad), and each case where torch's run could
tell more runs in torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shapetrace._private import torch_symbolic as ts
from shapetrace.symbolic import bridge
from shapetrace.symbolic.carried import carried
from shapetrace.symbolic.dims import Names, symbol


@pytest.fixture
def fakes():
    """Fake tensors sized by B, T, S (2, 6, 5) in a fake run with grad mode off, as the bench
    and ``torch.no_grad()`` scripts replay: ``make(shape)``, a shape of names and numbers."""
    names = Names()
    for name, value in (("B", 2), ("T", 6), ("S", 5)):
        names.bind(name, value, "test")
    run = bridge.FakeRun(names)

    def make(shape, dtype=torch.float32):
        canonical = tuple(symbol(s) if isinstance(s, str) else s for s in shape)
        concrete = tuple(names.all[s] if isinstance(s, str) else s for s in shape)
        return run.tensor(canonical, concrete, dtype, torch.device("cpu"))

    with run.running(grad=False):
        yield make


def assert_as_torchs(ours, torchs, case=""):
    """The same sizes, strides and storage offset as written, dtype, device and requires_grad."""
    assert ts.is_fake(ours), case
    assert ts.size_exprs(ours.shape) == ts.size_exprs(torchs.shape), case
    assert ts.size_exprs(ours.stride()) == ts.size_exprs(torchs.stride()), case
    assert ts.size_expr(ours.storage_offset()) == ts.size_expr(torchs.storage_offset()), case
    assert (ours.dtype, ours.device, ours.requires_grad) == (torchs.dtype, torchs.device, torchs.requires_grad), case


class Dispatches(torch.utils._python_dispatch.TorchDispatchMode):
    """The aten ops dispatched inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.append(func)
        return func(*args, **(kwargs or {}))


def test_views_without_grad_are_torchs_sizes_on_the_same_storage_without_dispatch(fakes):
    """With grad mode off a carried view is made on its input's storage without the fake mode's
    dispatch (0.35-0.6 ms each on symbolic sizes): torch's sizes, strides and offset."""
    x = fakes(("B", "T", 96))
    batch, length, _ = x.shape
    heads = x.view(batch, length, 4, 24)
    cases = [(torch.Tensor.view, (x, batch, length, 4, 24)), (torch.Tensor.transpose, (heads, 1, 2)),
             (torch.Tensor.split, (x, 32, -1)), (torch.Tensor.__getitem__, (x, (slice(None), None, Ellipsis, slice(8, None)))),
             (torch.Tensor.reshape, (heads.transpose(1, 2).transpose(1, 2), batch, length, 96)),
             (torch.Tensor.unsqueeze, (x, 1)), (torch.Tensor.permute, (heads, 0, 2, 3, 1))]  # fmt: skip
    for func, args in cases:
        made = carried(func, args, {})
        assert made is not None, func
        with Dispatches() as seen:
            ours = made()
        assert seen.seen == [], func
        torchs = func(*args)
        for mine, theirs in zip(ours if isinstance(ours, tuple) else [ours], torchs if isinstance(torchs, tuple) else [torchs]):
            assert_as_torchs(mine, theirs, func)
            assert mine.untyped_storage()._cdata == x.untyped_storage()._cdata


def test_views_with_grad_mode_on_stay_autograd_views(fakes):
    """With grad mode on, an in-place op on a view reaches its base through autograd: the view
    is torch's own (``_base`` set)."""
    x = fakes(("B", "T", 96))
    with torch.enable_grad():
        made = carried(torch.Tensor.view, (x, x.shape[0], x.shape[1], 4, 24), {})
        ours = made()
    assert ours._base is x


def test_new_tensors_are_torchs_contiguous_outputs(fakes):
    """A carried op's new tensor (a ``linear``, a reduction, a comparison) has torch's sizes and
    contiguous strides, made once per sizes and run."""
    x = fakes(("B", "T", 96))
    weight, bias = torch.zeros(48, 96), torch.zeros(48)
    for func, args in [(F.linear, (x, weight, bias)), (torch.Tensor.mean, (x, -1, True)),
                       (torch.Tensor.__lt__, (x, 0.5)), (F.linear, (x, weight, bias))]:  # fmt: skip
        made = carried(func, args, {})
        assert made is not None, func
        assert_as_torchs(made(), func(*args), func)
