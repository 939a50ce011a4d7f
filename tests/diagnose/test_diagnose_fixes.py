"""Fixes: re-run on meta tensors before they are printed as checked; given as edits of the
source; modules whose construction raised; the mask made in __init__ as a plain attribute."""

from __future__ import annotations

import inspect
import textwrap

import pytest
import torch
from torch import nn

from shapetrace import trace
from shapetrace.capture.records import TensorMeta
from shapetrace.diagnose import ERROR, apply_edits
from shapetrace.diagnose.checking import Fix, Replay, fixed, passes
from shapetrace.diagnose.evidence import describe_call

HERE = __file__


def here() -> int:
    """The line of the caller."""
    return inspect.currentframe().f_back.f_lineno


# --- the checker --------------------------------------------------------------------------------


def test_a_check_passes_only_when_the_original_fails_and_the_fix_runs():
    a, b = torch.empty(2, 3, device="meta"), torch.empty(4, 3, device="meta")
    assert passes(fixed(lambda: a @ b, lambda: a @ b.T))
    assert not passes(fixed(lambda: a @ b.T, lambda: a @ b.T))  # the original does not fail: nothing was checked
    assert not passes(fixed(lambda: a @ b, lambda: a @ b))  # the fix does not help
    assert not passes(None)


def test_a_replay_rebuilds_the_call_on_meta_tensors_and_records_nothing():
    x, w = torch.rand(2, 5), torch.rand(3, 4)
    call = describe_call((x, w), None)
    replay = Replay.of(torch.nn.functional.linear, call, [_meta(x), _meta(w)])
    with trace() as t:
        assert passes(replay.check({1: lambda t: t.new_empty((3, 5))}))
        assert not passes(replay.check({1: lambda t: t.new_empty((3, 6))}))
    assert len(t.ops) == 0  # the re-runs are not the user's ops


def _meta(tensor):
    return TensorMeta(tuple(tensor.shape), tensor.dtype, tensor.device, False)


def test_an_unchecked_fix_is_a_suggestion(run_failing):
    class Attn(nn.Module):
        def forward(self, q, k):
            return q @ k  # (B, N, N) meant

    _, _, d = run_failing(Attn(), torch.rand(2, 5, 8), torch.rand(2, 5, 8))
    assert d.fix_checked and d.fix_label == "Fix (checked)"
    assert Fix("text").check is None and not passes(Fix("text").check)


# --- edits --------------------------------------------------------------------------------------


def test_an_edit_rewrites_just_the_operand_even_in_a_call_over_several_lines(tmp_path):
    script = tmp_path / "timestep.py"
    script.write_text(textwrap.dedent("""\
        import torch


        def noisy(x, t):
            return torch.lerp(
                x, torch.randn_like(x),
                t,
            )


        noisy(torch.rand(4, 3, 8, 8), torch.rand(4))
    """))
    from shapetrace.cli.runner import run_script

    run = run_script(str(script), [])
    d = next(d for d in run.trace.diagnostics if d.severity == ERROR)
    assert (d.kind, d.line) == ("broadcast", 5)
    assert [(e.line, e.col, e.end_col, e.text) for e in d.edits] == [(7, 8, 9, "t[:, None, None, None]")]
    fixed_source = apply_edits(script.read_text(), d.edits)
    assert "        t[:, None, None, None],\n" in fixed_source and d.fix_checked
    exec(compile(fixed_source, str(script), "exec"), {"__name__": "__main__"})  # runs


# --- modules whose construction raised ------------------------------------------------------------


def test_groupnorm_built_with_groups_that_do_not_divide_the_channels():
    with pytest.raises(ValueError) as info, trace() as t:
        nn.GroupNorm(32, 48)
    line = here() - 1
    (d,) = t.diagnostics
    assert (d.kind, d.severity, d.file, d.line, d.op_index) == ("module-arguments", ERROR, HERE, line, None)
    assert "splits num_channels=48 into num_groups=32 groups, but 48 is not a multiple of 32" in d.message
    assert "Group counts that divide 48: 1, 2, 3, 4, 6, 8, 12, 16, 24, 48." in d.message
    assert d.fix.startswith("`nn.GroupNorm(16, 48)`") and d.fix_checked
    (note,) = info.value.__notes__
    assert note.startswith("shapetrace: module-arguments: `GroupNorm` at ") and f"test_diagnose_fixes.py:{line}\n" in note


def test_conv_groups_and_attention_heads_that_do_not_divide():
    with pytest.raises(ValueError), trace() as t:
        nn.Conv2d(48, 64, 3, groups=32)
    (d,) = t.diagnostics
    assert "Group counts that divide 48 and 64: 1, 2, 4, 8, 16." in d.message
    assert d.fix.startswith("`nn.Conv2d(48, 64, 3, groups=16)`") and d.fix_checked

    with pytest.raises(AssertionError), trace() as t:
        nn.TransformerEncoderLayer(30, 4)  # the MultiheadAttention inside asserts
    (d,) = t.diagnostics
    assert d.line == here() - 2 and d.op == "TransformerEncoderLayer"
    assert "splits d_model=30 into nhead=4 heads" in d.message
    assert d.fix.startswith("`nn.TransformerEncoderLayer(30, 3)`") and d.fix_checked


def test_a_module_built_inside_a_forward_is_named_at_its_line():
    class Lazy(nn.Module):
        def forward(self, x):
            return nn.GroupNorm(32, x.shape[1])(x)  # built on the first call

    model = Lazy()
    with pytest.raises(ValueError), trace(model) as t:
        model(torch.rand(2, 48, 4, 4))
    (d,) = t.diagnostics
    assert (d.kind, d.line) == ("module-arguments", inspect.getsourcelines(Lazy.forward)[1] + 1)
    assert d.fix.startswith("`nn.GroupNorm(16, x.shape[1])`")


def test_an_op_that_fails_while_torch_builds_a_module_in_a_forward():
    class Builder(nn.Module):
        def forward(self, x):
            return nn.Linear(-5, 3)(x)  # torch.empty raises inside Linear.__init__

    model = Builder()
    with pytest.raises(RuntimeError), trace(model) as t:
        model(torch.rand(2, 4))
    assert t.error.op_index is not None  # recorded as an op error...
    (d,) = t.diagnostics
    assert d.kind == "module-arguments" and d.op == "Linear"  # ...explained as the construction
    assert "`nn.Linear(-5, 3)` raised while it was built: Trying to create tensor with negative dimension" in d.message
    assert "in_features=-5, out_features=3" in d.message and d.fix is None


# --- the mask made in __init__, with the model built inside the trace ---------------------------------


class CausalAttention(nn.Module):
    def __init__(self, max_len=8):
        super().__init__()
        self.mask = torch.ones(max_len, max_len).tril()  # (L, L)

    def forward(self, att):
        N = att.shape[-1]
        return att.masked_fill(self.mask[:N, :N] == 0, float("-inf"))  # (B, N, N)


MASK_LINE = inspect.getsourcelines(CausalAttention)[1] + 3


def test_a_mask_made_in_init_gets_register_buffer_not_a_device_argument():
    with pytest.raises(RuntimeError), trace() as t:
        model = CausalAttention().to("meta")  # built inside the trace: its torch.ones is recorded
        model(torch.rand(2, 4, 4, device="meta"))
    (d,) = [d for d in t.diagnostics if d.severity == ERROR]
    assert d.kind == "device-mismatch" and "plain tensor attribute" in d.message
    assert d.fix.startswith('`self.register_buffer("mask", torch.ones(max_len, max_len).tril())` in `__init__`')
    assert "att.device" not in d.fix and d.fix_checked
    assert [(e.line, e.text) for e in d.edits] == [(MASK_LINE, 'self.register_buffer("mask", torch.ones(max_len, max_len).tril())')]


def test_a_mask_made_in_init_is_linted_on_a_clean_cpu_run_too():
    with trace() as t:
        model = CausalAttention()
        model(torch.rand(2, 4, 4))
    (lint,) = t.diagnostics
    assert (lint.kind, lint.line) == ("unregistered-tensor", inspect.getsourcelines(CausalAttention)[1] + 7)
    assert lint.fix.startswith('`self.register_buffer("mask"') and lint.fix_checked
