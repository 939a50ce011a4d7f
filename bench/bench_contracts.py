"""Contract checks: cost per checked call (µs) of a forward with three tensor arguments and a
return annotation, ours against the peers.

    python bench/bench_contracts.py [--rounds 15] [--calls 2000]

One thread, interleaved rounds, CPU time of the thread; each cell is the median over rounds of
the mean per call (best round in brackets). Rows: a bare call (the floor); jaxtyping's checks alone (push a memo,
``__instancecheck_str__`` on the three arguments and the return, pop: what any checker built on
jaxtyping pays at least); ``@shapetrace.contract``; an annotated module ``forward`` inside
``shapetrace.trace(model)`` (the installed ``model.forward`` called directly, so the recorder's
module-call hooks, the same with or without checks, stay out), and that call with checks
suspended; jaxtyping + beartype (when installed: not a dependency); and
jaxtyping + typeguard 2.13 (jaxtyping vendors it as ``jaxtyping._typeguard``). The last rows
repeat ours for specs jaxtyping has to evaluate (``*batch``, ``H*W``) and for a mismatch,
which is not the fast path.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from jaxtyping import Float, jaxtyped
from torch import Tensor, nn

import shapetrace
from shapetrace._private import jaxtyping_api as jt
from shapetrace.contracts import suspended

X = Float[Tensor, "B N D"]
Y = Float[Tensor, "B N"]
Z = Float[Tensor, " D"]  # the space keeps linters from reading "D" as a forward reference
BatchX = Float[Tensor, "*batch N D"]
BatchY = Float[Tensor, "*batch N"]


def forward(x: X, y: Y, z: Z) -> X:
    return x


def broadcast_forward(x: BatchX, y: BatchY, z: Z) -> Float[Tensor, "*batch N*D"]:
    return x.reshape(*x.shape[:-2], -1)


class Annotated(nn.Module):
    def forward(self, x: X, y: Y, z: Z) -> X:
        return x


def jaxtyping_checks_alone(x: Tensor, y: Tensor, z: Tensor) -> Tensor:
    jt.push_memo({"x": x, "y": y, "z": z})
    try:
        for hint, value in ((X, x), (Y, y), (Z, z)):
            assert jt.instancecheck_reason(hint, value) == ""
        out = forward(x, y, z)
        assert jt.instancecheck_reason(X, out) == ""
        return out
    finally:
        jt.pop_memo()


def peers() -> dict[str, Callable]:
    found: dict[str, Callable] = {}
    try:
        import beartype

        found["jaxtyping + beartype"] = jaxtyped(typechecker=beartype.beartype)(forward)
    except ImportError:
        pass
    try:
        from jaxtyping import _typeguard

        found["jaxtyping + typeguard 2.13"] = jaxtyped(typechecker=_typeguard.typechecked)(forward)
    except ImportError:
        pass
    return found


def per_call(fn: Callable, args: tuple, calls: int) -> float:
    """µs of this thread's CPU time per call (a shared machine's other load stays out)."""
    start = time.thread_time()
    for _ in range(calls):
        fn(*args)
    return (time.thread_time() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    options = parser.parse_args()
    torch.set_num_threads(1)
    args = (torch.rand(8, 16, 32), torch.rand(8, 16), torch.rand(32))
    batched = (torch.rand(2, 8, 16, 32), torch.rand(2, 8, 16), torch.rand(32))
    wrong = (args[0], torch.rand(8, 15), args[2])

    model = Annotated()
    runs: dict[str, tuple[Callable, tuple]] = {
        "bare call": (forward, args),
        "jaxtyping checks alone": (jaxtyping_checks_alone, args),
        "@shapetrace.contract": (shapetrace.contract(forward), args),
        "jaxtyping + beartype": None,
        "jaxtyping + typeguard 2.13": None,
        "@contract, *batch and N*D": (shapetrace.contract(broadcast_forward), batched),
    }
    for name, fn in peers().items():
        runs[name] = (fn, args)
    runs = {name: run for name, run in runs.items() if run is not None}

    times: dict[str, list[float]] = {name: [] for name in runs}
    times["module forward in trace()"] = []
    times["  same, checks suspended"] = []
    times["mismatch, recorded"] = []
    for _ in range(options.rounds):
        for name, (fn, call_args) in runs.items():
            times[name].append(per_call(fn, call_args, options.calls))
        with shapetrace.trace(model, on_violation="record"):
            # model.forward is the checked forward the trace installed; calling it directly
            # leaves out the module-call hooks, which cost the same with checks or without.
            times["module forward in trace()"].append(per_call(model.forward, args, options.calls))
            with suspended():
                times["  same, checks suspended"].append(per_call(model.forward, args, options.calls))
            times["mismatch, recorded"].append(per_call(model.forward, wrong, options.calls // 10))

    bare = statistics.median(times["bare call"])
    alone = statistics.median(times["jaxtyping checks alone"])
    print(f"Checked call, 3 tensor arguments + return (torch {torch.__version__}, 1 thread)")
    print(f"  {'':30s} {'µs/call':>9s} {'(best)':>8s} {'over bare':>10s} {'/ checks alone':>15s}")
    for name, values in times.items():
        median = statistics.median(values)
        extra = "" if name == "bare call" else f"{median - bare:10.2f}"
        print(f"  {name:30s} {median:9.2f} {min(values):8.2f} {extra:>10s} {median / alone:15.2f}")


if __name__ == "__main__":
    main()
