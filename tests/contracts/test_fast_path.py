"""The checks matched without jaxtyping agree with jaxtyping: same verdicts, same bindings."""

from __future__ import annotations

import random

import torch
from jaxtyping import Float, Int, Shaped
from torch import Tensor

from shapetrace._private import jaxtyping_api as jt
from shapetrace.contracts.checks import ArrayCheck, CallState

TOKENS = ["B", "N", "C", "3", "1", "N=2", "#B", "#N", "B*2", "N+1", "C//2", "_"]
VARIADIC = ["*batch", "...", "*#batch"]
DTYPES = [Float, Int, Shaped]
SIZES = [1, 2, 3, 4, 6]


def random_hint(rng: random.Random) -> type:
    tokens = [rng.choice(TOKENS) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.35:
        tokens.insert(rng.randint(0, len(tokens)), rng.choice(VARIADIC))
    return rng.choice(DTYPES)[Tensor, " ".join(tokens) or "..."]


def random_tensor(rng: random.Random) -> Tensor:
    shape = [rng.choice(SIZES) for _ in range(rng.randint(0, 4))]
    return torch.zeros(shape, dtype=rng.choice([torch.float32, torch.int64]))


def run_ours(steps: list[tuple[ArrayCheck, Tensor]]) -> tuple[list[bool], dict]:
    memos = jt.push_memo({})
    try:
        state = CallState({}, memos)
        verdicts = [check.check(value, "x", state) is None for check, value in steps]
        return verdicts, jt.bindings_of(*jt.current_memo())
    finally:
        jt.pop_memo()


def run_jaxtyping(steps: list[tuple[type, Tensor]]) -> tuple[list[bool], dict]:
    jt.push_memo({})
    try:
        verdicts = []
        for hint, value in steps:
            try:
                verdicts.append(jt.instancecheck_reason(hint, value) == "")
            except jt.AnnotationError:
                verdicts.append(False)
        return verdicts, jt.bindings_of(*jt.current_memo())
    finally:
        jt.pop_memo()


def test_same_verdicts_and_bindings_as_jaxtyping_on_random_specs():
    rng = random.Random(0)
    fast = 0
    for _ in range(800):
        steps = [(random_hint(rng), random_tensor(rng)) for _ in range(rng.randint(1, 4))]
        checks = [(ArrayCheck(hint), value) for hint, value in steps]
        assert run_ours(checks) == run_jaxtyping(steps), steps
        fast += sum(check.match is not None for check, _ in checks)
    assert fast > 1000  # most specs were matched without jaxtyping, so the comparison means something


def test_specs_left_to_jaxtyping():
    assert ArrayCheck(Float[Tensor, "*#batch C"]).match is None  # broadcastable variadic: numpy
    assert ArrayCheck(Float[Tensor, "?B"]).match is None  # tree paths
    assert ArrayCheck(Float[Tensor, "{n}"]).match is None  # formatted from the arguments
    assert ArrayCheck(Float[Tensor, "B *batch H*W #C 3 _"]).match is not None
