"""The private torch APIs the symbolic pass relies on (shapetrace/_private/torch_symbolic.py): these
fail loudly when torch moves them."""

from __future__ import annotations

import contextlib
import gc
import subprocess
import sys
import threading
import weakref

import sympy
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from shapetrace._private import module_calls, torch_api
from shapetrace._private import torch_symbolic as ts


def _named(env, name, value):
    return ts.symint(env, ts.named_symbol(env, name, value), value)


def test_fake_mode_gives_one_symbol_per_dim_without_duck_sizing():
    mode, env = ts.make_fake_mode()
    assert env.duck_shape is False and mode.shape_env is env and mode.cache_enabled is False
    with mode:
        x = torch.empty(_named(env, "H", 4), _named(env, "W", 4))  # equal sizes, two symbols
        y = x.flatten()
    h, w = (ts.size_expr(s) for s in x.shape)
    assert isinstance(h, sympy.Symbol) and h != w
    assert ts.size_expr(y.shape[0]) == h * w and ts.size_hint(y.shape[0]) == 16
    assert ts.named_symbol(env, "B", 1) == 1  # sizes 0 and 1 stay constants
    assert isinstance(ts.FloorDiv(h, 2), sympy.Expr)


def test_replacements_are_reported_with_the_guard_that_made_them():
    mode, env = ts.make_fake_mode()
    seen = []
    env.on_replacement = lambda symbol, target, guards: seen.append((symbol, target, guards))
    weight = torch.rand(3, 8)  # a real tensor mixed with fakes: a constant
    with mode:
        x = torch.empty(2, _named(env, "D", 8))
        d = ts.size_expr(x.shape[1])
        out = F.linear(x, weight)
    assert seen == [(d, 8, 0)] and out.shape == (2, 3)
    assert ts.guard_exprs(env) == [sympy.Eq(d, 8)]
    assert ts.size_expr(x.shape[1]) == d  # the raw expression keeps the symbol


def test_data_dependent_sizes_are_unbacked():
    mode, env = ts.make_fake_mode()
    with mode:
        x = torch.empty(_named(env, "N", 5))
        picked = x[x > 0]
    size = ts.size_expr(picked.shape[0])
    assert ts.has_unbacked(size) and ts.size_hint(picked.shape[0]) is None


def test_fake_copies_of_parameters_stay_parameters():
    mode, _ = ts.make_fake_mode()
    param = nn.Parameter(torch.rand(3, 4))
    fake = ts.fake_of(mode, param)
    assert isinstance(fake, nn.Parameter)
    assert type(fake).__name__ == "FakeTensor" and fake.shape == (3, 4) and fake.requires_grad
    assert ts.fake_of(mode, torch.empty(2, device="meta")).device.type == "meta"


def test_isolated_sets_modes_global_hooks_and_watchers_aside_and_puts_them_back():
    class Spy(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(func)
            return func(*args, **(kwargs or {}))

    seen, elsewhere, watched = [], [], []
    hook = lambda module, args: seen.append(module)  # noqa: E731
    handle = nn.modules.module.register_module_forward_pre_hook(hook)
    enter, leave = (lambda module, args: watched.append(type(module))), (lambda *args: None)  # noqa: E731
    module_calls.watch_module_calls(enter, leave)
    counts = module_calls.global_module_hook_counts()
    try:
        with Spy(), torch.device("meta"):
            with ts.isolated():
                assert torch_api.torch_function_mode_depth() == 0
                y = nn.Linear(2, 2)(torch.ones(2))  # the global hook skips this thread ...
                other = threading.Thread(target=lambda: elsewhere.append(nn.Identity()(torch.ones(1))))
                other.start()
                other.join()
            assert torch_api.torch_function_mode_depth() == 2
        assert F.linear not in seen and [type(s) for s in seen if isinstance(s, nn.Module)] == [nn.Identity]
        assert y.device.type == "cpu"  # not on meta: torch.device(...) was set aside too
        assert module_calls.global_module_hook_counts() == counts
        assert nn.modules.module._global_forward_pre_hooks[handle.id] is hook
        assert watched == [nn.Identity]  # the watchers of module calls skip this thread too
    finally:
        handle.remove()
        module_calls.unwatch_module_calls(enter, leave)


def test_module_calls_go_through_the_handler_on_this_thread_only():
    seen, elsewhere = [], []
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    original = nn.Module.__call__

    def handler(module, args, kwargs):
        seen.append(type(module).__name__)
        return ts.plain_call(module, args, kwargs)

    with ts.module_calls_through(handler):
        assert nn.Module.__call__ is not original
        y = model(torch.ones(1, 2))
        other = threading.Thread(target=lambda: elsewhere.append(model(torch.ones(1, 2))))
        other.start()
        other.join()
    assert nn.Module.__call__ is original
    assert seen == ["Sequential", "Linear", "ReLU"] and y.shape == (1, 2) and elsewhere[0].shape == (1, 2)


def test_plain_call_never_runs_a_compiled_module():
    dynamo = __import__("pytest").importorskip("torch._dynamo")
    model = nn.Linear(2, 2)
    model.compile(backend="eager")
    frames = dict(dynamo.utils.counters["frames"])
    assert ts.plain_call(model, (torch.ones(1, 2),), {}).shape == (1, 2)
    assert dict(dynamo.utils.counters["frames"]) == frames
    wrapper = torch.compile(model, backend="eager")
    assert ts.compiled_original(wrapper) is model and ts.compiled_original(model) is None
    codes = ts.compiled_entry_codes()
    assert {code.co_name for code in codes} == {"compile_wrapper"}


def test_torchscript_modules_are_recognised():
    assert ts.is_torchscript(torch.jit.script(nn.Linear(2, 2)))
    assert ts.is_torchscript(torch.jit.trace(nn.Linear(2, 2), torch.ones(1, 2)))
    assert not ts.is_torchscript(nn.Linear(2, 2))


def test_python_dispatched_ops_fix_sizes_without_the_python_dispatcher():
    """The list is right: each op fixes (or rejects) a symbolic size without the Python dispatcher,
    and keeps it with it."""
    cases = [
        (F.interpolate, lambda f, x: f(x, scale_factor=2)),
        (F.pad, lambda f, x: f(x, (1, 1))),
        (torch._C._fft.fft_rfft, lambda f, x: f(x)),
        (F.unfold, lambda f, x: f(x, 2)),
    ]
    for func, call in cases:
        assert func in ts.python_dispatched()
        for dispatcher in (False, True):
            mode, env = ts.make_fake_mode()
            seen: list = []
            env.on_replacement = lambda symbol, target, guards, seen=seen: seen.append(target)
            with mode, ts.python_dispatcher() if dispatcher else contextlib.nullcontext():
                x = torch.empty(2, 3, _named(env, "H", 8), _named(env, "W", 6))
                out = call(func, x)
            assert bool(seen) != dispatcher, (func, dispatcher, seen)
            assert out.shape[-1] is not None
    assert torch.lstm in ts.python_dispatched() and torch.gru in ts.python_dispatched()


def test_fake_tensors_are_recognised_and_warm_up_runs_once():
    mode, _ = ts.make_fake_mode()
    with mode:
        fake = torch.empty(2)
    assert ts.is_fake(fake) and not ts.is_fake(torch.empty(2)) and isinstance(fake, ts.FakeTensor)
    ts.warm_up()
    ts.warm_up()  # the second is free


def test_relations_the_value_ranges_decide_are_decided_as_torch_decides_them(monkeypatch):
    """RecordingShapeEnv._maybe_evaluate_static decides from value ranges first (torch's
    ShapeEnv.var_to_range, replacements, _maybe_evaluate_static's code with its cache_clear, and
    torch.utils._sympy.value_ranges.bound_sympy): the same answers as torch's own evaluation."""
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    mode, env = ts.make_fake_mode()
    with mode:
        x = torch.empty(_named(env, "B", 2), 3, _named(env, "H", 64), _named(env, "W", 48))
        y = F.avg_pool2d(F.max_pool2d(F.conv2d(x, torch.empty(8, 3, 7, 7), stride=2, padding=3), 3, 2, 1), 2)
    b, _, h, w = (ts.size_expr(s) for s in y.shape)
    numel = 8 * b * h * w
    relations = [
        numel < 2, sympy.Eq(numel, 0), h >= 1, sympy.Ne(ts.sympy_functions.Max(1, h) * ts.sympy_functions.Max(1, w), h * w),
        sympy.Eq(h, 1), sympy.Eq(b, 2),  # undecided: sizes 1 and 2 are in the ranges
    ]  # fmt: skip
    ours = [env._maybe_evaluate_static(r) for r in relations]
    torchs = [ShapeEnv._maybe_evaluate_static(env, r) for r in relations]
    assert ours == torchs == [sympy.false, sympy.false, sympy.true, sympy.false, None, None]

    # torch clears its static-evaluation cache through this attribute when a range narrows (the
    # pass's copy of torch's evaluation, tests/private/test_floor_div_resimplification.py)
    assert ts.RecordingShapeEnv._maybe_evaluate_static.cache_clear is ts._torchs_static.cache_clear
    asked = []
    monkeypatch.setattr(ts, "_torchs_static", lambda self, expr, **kw: asked.append(expr))
    assert env._maybe_evaluate_static(sympy.Eq(16 * numel, 0)) == sympy.false
    assert asked == []  # torch was not asked
    assert env._maybe_evaluate_static(sympy.Eq(h, 3)) is None and asked == [sympy.Eq(h, 3)]


def test_value_ranges_are_torchs_bound_sympy_and_follow_narrowed_ranges():
    """RecordingShapeEnv.bound_sympy (asked by torch for each ``%`` on sizes) is torch's
    ShapeEnv.bound_sympy of the expression and its symbols' ranges (ShapeEnv.var_to_range,
    torch.utils._sympy.value_ranges.bound_sympy), also after a guard narrows a range."""
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    mode, env = ts.make_fake_mode()
    h, w = _named(env, "H", 30), _named(env, "W", 23)
    padded = h // 4 + (7 - (h // 4) % 7) % 7  # Swin's pad to whole windows
    exprs = [ts.size_expr(e) for e in (padded, (w + 1) // 2 - 3, h * w % 5, h - w)]
    for expr in exprs:
        assert env.bound_sympy(expr) == ShapeEnv.bound_sympy(env, expr)
    assert env.bound_sympy(exprs[3], size_oblivious=True) == ShapeEnv.bound_sympy(
        env, exprs[3], size_oblivious=True
    )
    before = env.bound_sympy(exprs[1])
    assert bool(w >= 20)  # a guard: W's range narrows
    assert env.bound_sympy(exprs[1]) == ShapeEnv.bound_sympy(env, exprs[1]) != before


def test_implications_of_a_guard_are_torchs_and_read_no_shape_env_state():
    """RecordingShapeEnv.get_implications is torch's ShapeEnv.get_implications (a function of the
    guard alone: its source reads nothing of ``self``), cached across ShapeEnvs; where a torch
    version reads its ShapeEnv there, the memo is off (IMPLICATIONS_MEMO)."""
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    mode, env = ts.make_fake_mode()
    h, w = (ts.size_expr(_named(env, name, value)) for name, value in (("H", 30), ("W", 23)))
    guards = [sympy.Eq(h, 2 * w - 16), h // 4 >= 1, sympy.And(w // 2 >= 1, h // 2 >= 1), sympy.Lt(h, w + 8),
              sympy.Ne(h % 7, 0)]  # fmt: skip
    for guard in guards:
        assert env.get_implications(guard) == ShapeEnv.get_implications(env, guard), guard
    _, other = ts.make_fake_mode()
    if ts.IMPLICATIONS_MEMO:  # torch 2.13's reads nothing of its ShapeEnv
        assert other.get_implications(guards[0]) is env.get_implications(guards[0])  # one memo for all


def test_the_user_frame_is_torchs_found_from_the_same_files():
    """RecordingShapeEnv._get_user_frame (torch's ShapeEnv._get_user_frame, with the files of
    symbolic_shapes.uninteresting_files() found without importing them): the same files, the same frame."""
    from torch.fx.experimental import symbolic_shapes

    assert ts.uninteresting_files() == symbolic_shapes.uninteresting_files()
    assert "_get_user_frame" in vars(symbolic_shapes.ShapeEnv)  # torch still asks this method for its frames
    _, env = ts.make_fake_mode()

    def in_user_code():
        frame = sys._getframe()
        return frame, env._get_user_frame(), symbolic_shapes.ShapeEnv._get_user_frame(env), env._get_sloc()

    caller, ours, torchs, where = in_user_code()
    assert ours is torchs is caller
    assert (where.framework_loc.lineno, where.framework_loc.name) == (caller.f_lineno, "in_user_code")  # as torch says it


def test_the_first_symbol_does_not_import_torch_export():
    """torch's own user-frame lookup imports torch.export, aot_autograd and networkx (~0.3 s) on a
    process's first symbol; the pass's ShapeEnv does not (a fresh process: this one may have them)."""
    code = (
        "import sys\nfrom shapetrace._private import torch_symbolic as ts\nts.warm_up()\n"
        "print(sorted(m for m in ('torch.export._trace', 'networkx') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_guards_are_added_without_building_their_log_record(monkeypatch):
    """torch's ShapeEnv logs each guard it adds through ShapeEnv._log_guard, building a structured
    record (symbolic_shapes.trace_structured: the guard's text, two stack walks) while its trace
    logger has a handler; the pass's ShapeEnv adds the same guard and builds no record."""
    from torch._logging import _internal as torch_logging
    from torch.fx.experimental import symbolic_shapes

    assert "_log_guard" in vars(symbolic_shapes.ShapeEnv)
    records = []
    monkeypatch.setattr(torch_logging.trace_log, "handlers", [object()])  # a handler: torch builds records
    monkeypatch.setattr(symbolic_shapes, "trace_structured", lambda name, metadata_fn, **kw: records.append(name))

    def divisibility_guard(env):
        sizes = [ts.symint(env, ts.named_symbol(env, name, value), value) for name, value in (("B", 2), ("H", 64))]
        with ts.FakeTensorMode(shape_env=env):
            torch.empty(*sizes).view(-1, 8)  # 8 divides B*H
        return len(env.guards)

    _, ours = ts.make_fake_mode()
    added = divisibility_guard(ours)
    assert added > 0 and "guard_added_fast" not in records
    assert divisibility_guard(symbolic_shapes.ShapeEnv(duck_shape=False)) == added
    assert "guard_added_fast" in records  # torch's own ShapeEnv built the records


def test_an_alias_is_a_new_fake_tensor_of_the_same_layout_made_without_dispatch(dispatches):
    mode, env = ts.make_fake_mode()
    with mode:
        x = torch.empty(_named(env, "B", 2), 3, _named(env, "W", 5)).transpose(1, 2)
        y = ts.alias(x)
        y.unsqueeze_(0)  # its own sizes: x keeps its own
    assert ts.is_fake(y) and y is not x and y.fake_mode is mode and not y.requires_grad
    assert ts.size_exprs(y.shape[1:]) == ts.size_exprs(x.shape) and ts.size_exprs(y.stride()[1:]) == ts.size_exprs(x.stride())
    assert x.dim() == 3 and y.dtype == x.dtype and y.device == x.device

    with mode, dispatches() as dispatched:
        ts.alias(x)
    assert dispatched.seen == []  # torch's fast detach: no dispatch (the pass's carried ops rely on its cost)


def test_strided_aliases_and_empties_are_torchs_fake_tensors_made_without_dispatch(dispatches):
    """``ts.strided_alias`` is torch's meta ``as_strided`` and ``ts.empty`` its fake ``empty``,
    both called inside the fake mode's kernel invocation (torch's fast detach does the same)."""
    mode, env = ts.make_fake_mode()
    with mode:
        x = torch.empty(_named(env, "B", 2), _named(env, "T", 5), 12)
        batch, length = x.shape[0], x.shape[1]
        heads = x[:, 1:].view(batch, length - 1, 3, 4).transpose(1, 2)  # an offset, a permutation
        ours = ts.strided_alias(x, list(heads.shape), list(heads.stride()), heads.storage_offset())
        blank, theirs = ts.empty(mode, [batch, length, 7], torch.float16, x.device), torch.empty(batch, length, 7, dtype=torch.float16)
    for made, torchs in ((ours, heads), (blank, theirs)):
        assert ts.is_fake(made) and made.fake_mode is mode and not made.requires_grad
        assert ts.size_exprs(made.shape) == ts.size_exprs(torchs.shape)
        assert ts.size_exprs(made.stride()) == ts.size_exprs(torchs.stride())
        assert (made.storage_offset(), made.dtype, made.device) == (torchs.storage_offset(), torchs.dtype, torchs.device)
    assert ours.untyped_storage()._cdata == x.untyped_storage()._cdata  # on x's storage

    with mode, dispatches() as dispatched:
        ts.strided_alias(x, [batch, length * 12], [length * 12, 1], 0)
        ts.empty(mode, [batch, 3], torch.float32, x.device)
    assert dispatched.seen == []


def test_a_size_is_read_in_the_symbols_its_shape_env_replaced_it_with():
    mode, env = ts.make_fake_mode()
    with mode:
        a = torch.empty(_named(env, "B", 4), 3)
        b = torch.empty(_named(env, "N", 4), 3)
        batch = a.shape[0]
        assert ts.replaced(batch) is batch  # nothing replaced yet: the same object
        a + b  # B == N: torch replaces one by the other
    replaced = {ts.size_expr(ts.replaced(s)) for s in (a.shape[0], b.shape[0])}
    assert len(replaced) == 1 and ts.size_expr(a.shape[0]) != ts.size_expr(b.shape[0])  # the raw sizes still differ
    assert ts.replaced(3) == 3


def test_output_sizes_are_torchs_meta_formulas_with_their_guards():
    """conv_output_size, max_pool2d_output_size and avg_pool2d_output_size call the functions
    torch's meta kernels compute sizes with (torch._meta_registrations): the sizes of torch's fake
    op, and its guards (a ceil-mode pool's last window, a kernel that must fit)."""
    cases = [
        (lambda x: F.conv2d(x, torch.zeros(4, 8, 3, 3), stride=2),
         lambda x: ts.conv_output_size(x, torch.zeros(4, 8, 3, 3), [2, 2], [0, 0], [1, 1], 1)),
        (lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
         lambda x: ts.max_pool2d_output_size(x, [3, 3], [2, 2], [1, 1], [1, 1], True)),
        (lambda x: F.avg_pool2d(x, 3, ceil_mode=True), lambda x: ts.avg_pool2d_output_size(x, [3, 3], [], [0, 0], True)),
    ]  # fmt: skip
    for torchs, ours in cases:
        results = []
        for compute in (torchs, lambda x, sizes=ours: torch.empty(sizes(x))):
            mode, env = ts.make_fake_mode()
            with mode, torch.no_grad():
                out = compute(torch.empty(_named(env, "B", 2), 8, _named(env, "H", 30), _named(env, "W", 23)))
            results.append((ts.size_exprs(out.shape), dict(env.replacements), len(ts.guard_exprs(env)) > 0))
        assert results[0][:2] == results[1][:2]
        assert results[1][2]  # a guard: H >= 3 and W >= 3, or the last window's



def test_slices_are_cut_as_torchs_fake_slice_cuts_them():
    """sliced (torch._subclasses.fake_impls._compute_slice_index, guard_or_false,
    statically_known_true) gives the length and first index of torch's fake ``aten.slice``, for
    bounds that are numbers, sizes, negative, past the end and absent, and steps."""
    import sys

    mode, env = ts.make_fake_mode()
    with mode:
        x = torch.empty(2, _named(env, "H", 30), 8)
        height = x.shape[1]
        cases = [(0, sys.maxsize, 2), (1, sys.maxsize, 2), (0, height - 5, 1), (-3, sys.maxsize, 1), (4, 16, 3),
                 (0, 100, 1), (height // 2, height, 1)]  # fmt: skip
        for start, end, step in cases:
            torchs = torch.ops.aten.slice.Tensor(x, 1, start, end, step)
            length, first = ts.sliced(height, start, end, step)
            assert ts.size_expr(length) == ts.size_expr(torchs.shape[1]), (start, end, step)
            assert ts.size_expr(first * x.stride(1)) == ts.size_expr(torchs.storage_offset()), (start, end, step)


def test_a_views_count_is_checked_as_torchs_view_checks_it():
    """check_view_count makes torch's check (torch._check, as ``_reshape_view_helper`` makes it)
    that a view keeps the count of elements: a guard where sympy cannot decide it, an error where
    the count differs."""
    mode, env = ts.make_fake_mode()
    with mode:
        x = torch.empty(2, _named(env, "H", 28), 8)
        height = x.shape[1]
        ts.check_view_count(x, [2, height // 7, 7, 8])
        assert [str(g) for g in ts.guard_exprs(env)] == ["Eq(16*s1, 112*((s1//7)))"]  # H divisible by 7
        with contextlib.suppress(RuntimeError):
            ts.check_view_count(x, [2, height, 9])
            raise AssertionError("a count that differs passed")


def test_the_grouped_mm_output_is_torchs_meta_output_without_its_cuda_checks():
    """grouped_mm_output is torch._meta_registrations' ``_create_grouped_mm_output_tensor`` after
    the meta function's contraction check: on bfloat16, where torch's meta function runs, the
    same tensor; on float32, which torch 2.13's rejects (its CUDA kernel's rule), the same sizes."""
    offs = torch.tensor([2, 4, 6, 8], dtype=torch.int32)
    results = []
    for compute in ("torch", "ours"):
        mode, env = ts.make_fake_mode()
        with mode, torch.no_grad():
            tokens = torch.empty(_named(env, "N", 8), 16, dtype=torch.bfloat16)
            weight = torch.empty(4, 32, 16, dtype=torch.bfloat16).transpose(1, 2)
            out = torch._grouped_mm(tokens, weight, offs=offs) if compute == "torch" else (
                ts.grouped_mm_output(tokens, weight, offs, None))  # fmt: skip
        results.append((ts.size_exprs(out.shape), out.stride(), out.dtype))
    assert results[0] == results[1] and results[1][0][1] == 32
    mode, env = ts.make_fake_mode()
    with mode, torch.no_grad():
        tokens, weight = torch.empty(_named(env, "N", 8), 16), torch.empty(4, 16, 32)
        ours = ts.grouped_mm_output(tokens, weight, offs, None)
        try:
            torchs = torch._grouped_mm(tokens, weight, offs=offs)
        except RuntimeError as error:  # torch 2.13's meta function: its CUDA kernel's rule
            assert "BF16" in str(error)
        else:  # later releases take float32 too: the same output
            assert (ts.size_exprs(torchs.shape), torchs.stride()) == (ts.size_exprs(ours.shape), ours.stride())
        assert ts.size_exprs(ours.shape)[1] == 32

def test_contiguous_strides_are_written_as_torch_writes_them():
    """contiguous_stride_exprs is torch._prims_common.make_contiguous_strides_for: a size torch
    cannot prove to be at least 1 is ``Max(1, size)`` inside a stride, as in a fake op's output."""
    mode, env = ts.make_fake_mode()
    with mode:
        x = torch.empty(_named(env, "B", 2), 8, _named(env, "H", 32))
        made = F.conv1d(x, torch.zeros(4, 8, 4), stride=4)  # (B, 4, H//4): H//4 may be 0
        ours = ts.contiguous_stride_exprs(made.shape)
    assert ours == ts.size_exprs(made.stride()) and isinstance(ours[1], sympy.Expr)
    assert ours[1].has(ts.sympy_functions.Max) and ts.contiguous_stride_exprs([2, 3]) == (3, 1)


def test_1d_pool_sizes_are_torchs_with_the_guard_on_the_length():
    """pool1d_output_size pools ``x.unsqueeze(-2)`` with torch's 2-d meta formulas; for
    ``max_pool1d`` it first makes the length an int, as ATen's ``check_max_pool1d`` does: a guard
    that fixes the length's expression, or replaces a length that is one symbol."""
    for length_of, fixes in ((lambda x: x, True), (lambda x: F.conv1d(x, torch.zeros(8, 8, 3), stride=2), True),
                             (lambda x: x, False)):  # fmt: skip
        results = []
        for compute in ("torch", "ours"):
            mode, env = ts.make_fake_mode()
            with mode, torch.no_grad():
                x = length_of(torch.empty(_named(env, "B", 2), 8, _named(env, "L", 1000)))
                if compute == "torch":
                    out = F.max_pool1d(x, 4) if fixes else F.avg_pool1d(x, 3, 2, 1, True)
                    sizes = list(out.shape)
                else:
                    sizes = ts.pool1d_output_size(x, 4, 4, 0, 1, False, fixes_length=True) if fixes else (
                        ts.pool1d_output_size(x, 3, 2, 1, 1, True, fixes_length=False))  # fmt: skip
            guards = [str(g) for g in ts.guard_exprs(env)]
            results.append((ts.size_exprs(sizes), {str(k): str(v) for k, v in env.replacements.items()}, guards))
        (sizes, replacements, guards), (our_sizes, our_replacements, our_guards) = results
        assert our_sizes == sizes and our_replacements == replacements and set(our_guards) <= set(guards)
        assert any(g.startswith("Eq(") for g in our_guards) == fixes  # the length made an int


def test_scratch_lives_and_dies_with_its_fake_mode():
    """``scratch(mode)``: one dict per fake mode, freed with the mode even when what it keeps holds
    the mode (a fake tensor does)."""
    mode, _ = ts.make_fake_mode()
    other, _ = ts.make_fake_mode()
    kept = ts.scratch(mode)
    assert ts.scratch(mode) is kept and ts.scratch(other) is not kept
    with mode:
        kept["tensor"] = torch.empty(2, 3)
    assert kept["tensor"].fake_mode is mode
    gone = weakref.ref(mode)
    del mode, kept
    gc.collect()
    assert gone() is None


def test_guard_evaluation_runs_without_the_threads_profile_function():
    """A guard evaluated from the replayed code (``if h != 64:``) runs torch's ShapeEnv and sympy
    without the effect guard's profile function, which is on again afterwards."""
    _, env = ts.make_fake_mode()
    h = ts.symint(env, ts.named_symbol(env, "h", 64), 64)
    seen: list[str] = []

    def profile(frame, event, arg):
        if event == "call":
            seen.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        specialised = bool(h == 64)
        assert sys.getprofile() is profile
    finally:
        sys.setprofile(None)
    assert specialised and ts.guard_exprs(env)  # torch evaluated it, and guarded
    assert "evaluate_sym_node" in seen  # entered under the profile, then evaluated without it
    assert not {"evaluate_expr", "_evaluate_expr", "_inner_evaluate_expr"} & set(seen)
