"""RecordingShapeEnv.simplify's memo (shapetrace/_private/torch_symbolic.py): torch's
``resimplify_floor_div`` simplifies every fact again each time a divisibility fact is added; the
memo reuses a fact's simplification while what torch's ``simplify`` reads of the ShapeEnv answers
the same. These compare it with torch's own ``simplify`` and fail when the torch internals it relies
on move."""

from __future__ import annotations

import inspect
import re

import pytest
import sympy
import torch
import torch.nn.functional as F
from torch.fx.experimental.symbolic_shapes import ShapeEnv

from shapetrace._private import torch_symbolic as ts

FloorDiv = ts.FloorDiv
sympy_max = ts.sympy_functions.Max
CleanDiv = ts.sympy_functions.CleanDiv


# The memo's tests, where torch's simplify is the one it was proven for (torch 2.13; 2.15's reads
# the value ranges itself: the pass then uses torch's own, test_the_memo_is_off_where_...).
needs_memo = pytest.mark.skipif(not ts.SIMPLIFY_MEMO, reason="torch's ShapeEnv.simplify reads the ShapeEnv otherwise")


class TorchsSimplify(ts.RecordingShapeEnv):
    """The pass's ShapeEnv with torch's own simplify (no memo)."""

    def simplify(self, expr, size_oblivious=False, **options):
        return ShapeEnv.simplify(self, expr, size_oblivious, **options)

    replace = ShapeEnv.replace
    _update_divisible = ShapeEnv._update_divisible


def _named(env, name, value):
    return ts.symint(env, ts.named_symbol(env, name, value), value)


def _patchify(env: ShapeEnv, steps: int = 1) -> list:
    """Strided convs and MobileViT-style unfold/fold reshapes on symbolic H, W: each reshape adds
    divisibility facts, and the guards pile up facts with floor divisions."""
    mode = ts.FakeTensorMode(shape_env=env, allow_non_fake_inputs=True)
    mode.cache_enabled = False
    shapes = []
    with mode, torch.no_grad():
        x = torch.empty(2, 4, _named(env, "H", 64), _named(env, "W", 48))
        weight = torch.empty(4, 4, 3, 3)
        for _ in range(steps):
            x = F.conv2d(x, weight, stride=2, padding=1)
            b, c, h, w = x.shape
            patches = x.reshape(b * c * (h // 2), 2, w // 2, 2).transpose(1, 2)
            patches = patches.reshape(b, c, (h // 2) * (w // 2), 4)
            shapes.append(ts.size_exprs(patches.shape))
            x = patches.reshape(b * c * (h // 2), w // 2, 2, 2).transpose(1, 2).reshape(b, c, h, w)
            shapes.append(ts.size_exprs(x.shape))
    return shapes


def _state(env: ShapeEnv) -> tuple:
    return (
        [guard.expr for guard in env.guards],
        list(env.axioms.items()),  # keys, values and order
        set(env.divisible),
        dict(env.replacements),
        dict(env.var_to_range),
    )


@needs_memo
def test_the_memo_leaves_torchs_guards_facts_and_shapes_as_torchs_simplify_makes_them(monkeypatch):
    runs = {}  # ShapeEnv -> how many times torch's simplify ran on a fact
    torch_simplify = ShapeEnv.simplify

    def counted(self, expr, size_oblivious=False, **options):
        if expr in self.axioms:
            runs[self] = runs.get(self, 0) + 1
        return torch_simplify(self, expr, size_oblivious, **options)

    counted.cache_clear = torch_simplify.cache_clear
    monkeypatch.setattr(ShapeEnv, "simplify", counted)
    torchs = TorchsSimplify(duck_shape=False)
    torch_shapes = _patchify(torchs)
    ours = ts.RecordingShapeEnv(duck_shape=False)
    our_shapes = _patchify(ours)

    assert our_shapes == torch_shapes
    assert _state(ours) == _state(torchs)
    assert len(ours.divisible) >= 5 and sum(1 for fact in ours.axioms if fact.has(FloorDiv)) > 200
    # torch's simplify ran on the facts a fraction of the times torch's resimplification asks
    assert runs[ours] * 2 < runs[torchs], runs


@needs_memo
def test_a_new_divisibility_fact_or_replacement_gives_torchs_new_simplification():
    ours, torchs = ts.RecordingShapeEnv(duck_shape=False), TorchsSimplify(duck_shape=False)
    h, w = (ts.named_symbol(ours, name, value) for name, value in (("H", 64), ("W", 48)))
    assert [ts.named_symbol(torchs, name, value) for name, value in (("H", 64), ("W", 48))] == [h, w]
    facts = [sympy.Eq(4 * FloorDiv(h, 4), h), sympy.Ne(FloorDiv(h, 2) + FloorDiv(w, 3), 7)]
    for env in (ours, torchs):
        env.axioms.update(dict.fromkeys(facts, sympy.true))

    def both(fact):
        theirs = torchs.simplify(fact)
        assert ours.simplify(fact) == theirs
        return theirs

    assert [both(fact) for fact in facts] == facts  # nothing known: torch leaves them
    assert set(facts) <= set(ts._simplified)
    for env in (ours, torchs):
        env._add_divisible(ts.sympy_functions.Mod(h, 4))  # H divisible by 4: H//4 is exact
    assert both(facts[0]).has(CleanDiv) and both(facts[1]) == facts[1]  # torch's exact H/4 (a CleanDiv)
    for env in (ours, torchs):
        env._set_replacement(w, sympy.Integer(48), "test")  # W fixed: torch's replacement applies
    assert both(facts[1]) != facts[1]


def test_the_memo_is_on_only_where_torchs_simplify_is_the_one_it_was_proven_for(monkeypatch):
    """On the pinned torch the memo is on. Where torch's simplify reads the ShapeEnv otherwise
    (torch 2.15 reads the value ranges itself and takes ``axioms=``), every call is torch's own,
    with the keywords torch gives it."""
    if torch.__version__.startswith("2.13."):
        assert ts.SIMPLIFY_MEMO
    calls = []
    torch_simplify = ShapeEnv.simplify

    def counted(self, expr, size_oblivious=False, **options):
        calls.append(options)
        return torch_simplify(self, expr, size_oblivious, **options)

    counted.cache_clear = torch_simplify.cache_clear
    monkeypatch.setattr(ShapeEnv, "simplify", counted)
    monkeypatch.setattr(ts, "_simplified", {})
    env = ts.RecordingShapeEnv(duck_shape=False)
    h = ts.named_symbol(env, "H", 64)
    fact = sympy.Eq(4 * FloorDiv(h, 4), h)
    assert env.simplify(fact) == env.simplify(fact) == torch_simplify(TorchsSimplify(duck_shape=False), fact)
    assert len(calls) == (1 if ts.SIMPLIFY_MEMO else 2)
    if "axioms" in inspect.signature(torch_simplify).parameters:
        assert env.simplify(fact, axioms=None) == env.simplify(fact) and calls[-2] == {"axioms": None}


@needs_memo
def test_the_torch_internals_the_memo_relies_on():
    """torch's simplify reads the ShapeEnv only through replace, _update_divisible,
    _maybe_evaluate_static and divisible; its resimplify_floor_div asks simplify of each fact;
    replace returns the expression itself when none of its symbols is replaced."""
    source = inspect.getsource(inspect.unwrap(ShapeEnv.simplify))
    reads = {"replace", "_update_divisible", "_maybe_evaluate_static", "divisible"}
    assert set(re.findall(r"self\.(\w+)", source)) == reads
    # its static evaluations: plain ones, of Ge(x, 1) and Ge(x, 0), before it reads divisibility
    evaluations = re.findall(r"self\._maybe_evaluate_static\(([^\n]*)\)", source)
    assert evaluations == ["sympy.Ge(b, 1)", "sympy.Ge(b, 0)"], evaluations
    assert source.index("_maybe_evaluate_static") < source.index("self._update_divisible()")
    assert source.index("_maybe_evaluate_static") < source.index("self.divisible")
    static = inspect.getsource(inspect.unwrap(ShapeEnv._maybe_evaluate_static))
    assert "def resimplify_floor_div(" in static and "self.simplify(k)" in static
    assert "self._resimplify_floor_div_axioms" in static and "resimplify_floor_div(self.axioms)" in static
    assert "self._update_version_counter()" in inspect.getsource(inspect.unwrap(ShapeEnv._update_divisible))
    env = ts.RecordingShapeEnv(duck_shape=False)
    h = ts.named_symbol(env, "H", 8)
    expr = sympy.Eq(FloorDiv(h, 2) + 1, h)
    mod = ts.sympy_functions.Mod(h, 2)
    assert env.replace(expr) is expr and env.replace(mod) == mod
    assert isinstance(env.axioms, dict) and isinstance(env.divisible, set)


def _counting(monkeypatch, only=None) -> dict:
    """ShapeEnv -> how many times torch's simplify was called in it (on ``only`` if given), from
    an empty memo."""
    runs: dict = {}
    torch_simplify = ShapeEnv.simplify

    def counted(self, expr, size_oblivious=False, **options):
        if only is None or expr == only:
            runs[self] = runs.get(self, 0) + 1
        return torch_simplify(self, expr, size_oblivious, **options)

    counted.cache_clear = torch_simplify.cache_clear
    monkeypatch.setattr(ShapeEnv, "simplify", counted)
    monkeypatch.setattr(ts, "_simplified", {})
    return runs


@needs_memo
def test_a_simplification_asking_torchs_static_evaluation_is_reused_while_it_answers_the_same(monkeypatch):
    """A fact with ``Max(1, H//4)`` (a contiguous stride): torch's simplify asks whether
    ``H//4 >= 1``, which H's range (2 and up) does not decide. The memo asks it again and reuses
    the simplification while the answer is the same, and gives torch's new one once a guard
    decides it."""
    ours, torchs = ts.RecordingShapeEnv(duck_shape=False), TorchsSimplify(duck_shape=False)
    h, w = (ts.named_symbol(ours, name, 64) for name in "HW")
    assert [ts.named_symbol(torchs, name, 64) for name in "HW"] == [h, w]
    fact = sympy.Ne(sympy_max(1, FloorDiv(h, 4)) * h, 7)
    runs = _counting(monkeypatch, only=fact)
    for env in (ours, torchs):
        env.axioms[fact] = sympy.true
    for step in range(3):
        theirs = torchs.simplify(fact)
        assert ours.simplify(fact) == theirs and theirs.has(ts.sympy_functions.Max)
        if step == 0:
            first = dict(runs)
    # torch's simplify did not run again in ours
    assert runs == {ours: first[ours], torchs: first[torchs] + 2}
    for env in (ours, torchs):
        assert env.evaluate_expr(sympy.Ge(FloorDiv(h, 4), 1)) is sympy.true  # a guard: H >= 4
        env._add_divisible(ts.sympy_functions.Mod(w, 2))  # a new state: torch's caches are cleared
    theirs = torchs.simplify(fact)
    assert ours.simplify(fact) == theirs and not theirs.has(ts.sympy_functions.Max)
    assert runs[ours] > first[ours]
    assert _state(ours) == _state(torchs)


@needs_memo
def test_the_memo_serves_every_shapeenv_of_the_pass_as_torchs_simplify_would(monkeypatch):
    """A second ShapeEnv running the same code (the next pass) reuses the first one's
    simplifications, of facts and of the guards asked alike, and ends as torch's simplify leaves it."""
    runs = _counting(monkeypatch)
    first = ts.RecordingShapeEnv(duck_shape=False)
    first_shapes = _patchify(first, steps=2)
    second = ts.RecordingShapeEnv(duck_shape=False)
    second_shapes = _patchify(second, steps=2)
    torchs = TorchsSimplify(duck_shape=False)
    assert first_shapes == second_shapes == _patchify(torchs, steps=2)
    assert _state(first) == _state(second) == _state(torchs)
    assert runs.get(second, 0) * 4 < runs[first] < runs[torchs], runs


class TorchsRefinement(TorchsSimplify):
    """The pass's ShapeEnv with torch's own simplify and range refinement (no memo)."""

    _refine_ranges = ShapeEnv._refine_ranges


def test_range_refinement_solves_each_guard_once_and_leaves_torchs_ranges(monkeypatch):
    """RecordingShapeEnv._refine_ranges is torch's code with torch's try_solve remembered: a second
    ShapeEnv running the same code solves nothing again, and ends with torch's ranges and guards."""
    solves = []
    torch_solve = ts.try_solve

    def counted(*args, **kwargs):
        solves.append(args)
        return torch_solve(*args, **kwargs)

    monkeypatch.setattr(ts, "try_solve", counted)
    ts._solved.cache_clear()
    first, second = ts.RecordingShapeEnv(duck_shape=False), ts.RecordingShapeEnv(duck_shape=False)
    first_shapes = _patchify(first, steps=2)
    solved_first = len(solves)
    assert _patchify(second, steps=2) == first_shapes
    assert solved_first > 10 and len(solves) == solved_first  # nothing solved again
    torchs = TorchsRefinement(duck_shape=False)
    assert _patchify(torchs, steps=2) == first_shapes
    assert _state(first) == _state(second) == _state(torchs)
    assert len(solves) == solved_first  # torch's own refinement does not ask the memo


def test_the_torch_internals_range_refinement_relies_on():
    """torch's _refine_ranges is a plain function whose module names are the ones it was given
    (try_solve aside), and try_solve is the one symbolic_shapes calls."""
    from torch.fx.experimental import symbolic_shapes

    ours, torchs = ts.RecordingShapeEnv._refine_ranges, ShapeEnv._refine_ranges
    assert ours is not torchs and ours.__code__ is torchs.__code__ and not torchs.__code__.co_freevars
    assert symbolic_shapes.try_solve is ts.try_solve and ours.__globals__["try_solve"] is ts._solved
    for name in torchs.__code__.co_names:
        if name in vars(symbolic_shapes) and name != "try_solve":
            assert ours.__globals__[name] is vars(symbolic_shapes)[name], name
    assert "self._refine_ranges(expr)" in inspect.getsource(ShapeEnv._maybe_guard_rel)


class TorchsStaticEvaluation(TorchsRefinement):
    """The pass's ShapeEnv with torch's own static evaluation behind the value ranges (no memo)."""

    def _maybe_evaluate_static(self, expr, **options):
        decided = self._decided_by_ranges(expr) if not options and isinstance(expr, ts._DECIDABLE) else None
        return decided if decided is not None else ShapeEnv._maybe_evaluate_static(self, expr, **options)

    _maybe_evaluate_static.cache_clear = ShapeEnv._maybe_evaluate_static.cache_clear


def _pools_and_convs(env: ShapeEnv) -> list:
    """Kernel-fit checks and pool output checks (``sym_and``s torch canonicalises), on H, W."""
    mode = ts.FakeTensorMode(shape_env=env, allow_non_fake_inputs=True)
    mode.cache_enabled = False
    shapes = []
    with mode, torch.no_grad():
        x = torch.empty(2, 4, _named(env, "H", 64), _named(env, "W", 48))
        for kernel in (4, 2, 2):
            x = F.conv2d(x, torch.empty(4, 4, kernel, kernel), stride=kernel)
            shapes.append(ts.size_exprs(x.shape))
        shapes.append(ts.size_exprs(F.max_pool2d(x, 2).shape))
        shapes.append(ts.size_exprs(F.avg_pool2d(x, 3, stride=1, padding=1).shape))
    return shapes


def test_static_evaluation_canonicalises_each_relation_once_and_leaves_torchs_state(monkeypatch):
    """RecordingShapeEnv's static evaluation is torch's code with torch's canonicalize_bool_expr
    remembered: a second ShapeEnv running the same code canonicalises nothing again, and ends with
    the shapes, guards and ranges torch's own static evaluation gives."""
    canonicalised = []
    torch_canonicalize = ts.canonicalize_bool_expr

    def counted(expr):
        canonicalised.append(expr)
        return torch_canonicalize(expr)

    monkeypatch.setattr(ts, "canonicalize_bool_expr", counted)
    ts._canonical.cache_clear()
    first, second = ts.RecordingShapeEnv(duck_shape=False), ts.RecordingShapeEnv(duck_shape=False)
    first_shapes = _pools_and_convs(first)
    done_first = len(canonicalised)
    assert _pools_and_convs(second) == first_shapes
    assert done_first >= 3 and len(canonicalised) == done_first  # nothing canonicalised again
    torchs = TorchsStaticEvaluation(duck_shape=False)
    assert _pools_and_convs(torchs) == first_shapes
    assert _state(first) == _state(second) == _state(torchs) and first.guards


def test_the_torch_internals_static_evaluation_relies_on():
    """torch's _maybe_evaluate_static is a plain function under torch's cache decorator, whose
    module names are the ones it was given (canonicalize_bool_expr aside), and canonicalises there;
    torch clears the pass's copy of its cache when a range narrows."""
    from torch.fx.experimental import symbolic_shapes

    torchs = ShapeEnv._maybe_evaluate_static.__wrapped__
    ours = ts._torchs_static.__wrapped__
    assert ours is not torchs and ours.__code__ is torchs.__code__ and not torchs.__code__.co_freevars
    assert symbolic_shapes.canonicalize_bool_expr is ts.canonicalize_bool_expr
    assert ours.__globals__["canonicalize_bool_expr"] is ts._canonical
    for name in torchs.__code__.co_names:
        if name in vars(symbolic_shapes) and name not in ("canonicalize_bool_expr", "try_solve"):
            assert ours.__globals__[name] is vars(symbolic_shapes)[name], name
    assert "canonicalize_bool_expr(expr)" in inspect.getsource(torchs)
    assert "self._maybe_evaluate_static.cache_clear()" in inspect.getsource(ShapeEnv._refine_ranges)
    assert ts.RecordingShapeEnv._maybe_evaluate_static.cache_clear is ts._torchs_static.cache_clear
