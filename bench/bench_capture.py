"""Capture overhead: per-op cost (µs) and traced/plain ratios on a small ViT and a small GPT.

    python bench/bench_capture.py [--rounds 30]

One thread, interleaved rounds; medians and minima (this VM's timings jitter by up to 2x, so the
minimum is the better measure of cost), and "paired": the median of each round's ratio to the
plain forward of the same round, with its 95% interval (each round starts at the next row, so
that no row always follows the same one). Rows: a plain forward; a bare TorchFunctionMode (the
floor every op-level tracer pays); shapetrace.trace(model), on the recorder traces use (its C hot
path when built: docs/capture.md) and, when that is the C one, on the pure-Python recorder too
(`--python-only`: that one alone); and, when installed, the peers
torchinfo and torchview (bench-only: `pip install torchinfo torchview graphviz`).
Per-op cost = (traced - plain) / recorded ops. Also printed: the cost on tiny tensors, where
kernel time does not hide the tracer's own cost; our own work per op above the bare mode, on a
chain of tiny ops outside any module (no module hooks: the op path alone); and the fixed cost of
one trace (entering and leaving it around an empty block, for the small ViT's 65 modules), back to
back and right after a forward (what a traced forward pays: cold caches, the trace's deletion).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
from models import CHAIN_STEPS, SmallGPT, SmallViT, op_chain
from torch.overrides import TorchFunctionMode

import shapetrace
from shapetrace.capture import recorder


class BareMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def bare(model, x):
    with BareMode():
        model(x)


def traced(model, x):
    with shapetrace.trace(model):
        model(x)


def on_python(run: Callable) -> Callable:
    """``run`` with traces on the pure-Python recorder."""

    def python_run(model, x):
        used, recorder.TRACE_RECORDER = recorder.TRACE_RECORDER, recorder.Recorder
        try:
            run(model, x)
        finally:
            recorder.TRACE_RECORDER = used

    return python_run


def traced_runs(run: Callable) -> dict[str, Callable]:
    """The traced rows: on the recorder traces use and, when that is the C one, on the Python one."""
    runs = {f"shapetrace.trace ({recorder.hot_path()})": run}
    if recorder.hot_path() == "C":
        runs["shapetrace.trace (Python)"] = on_python(run)
    return runs


def torchinfo_run(model, x):
    import torchinfo

    torchinfo.summary(model, input_data=x, verbose=0)


def torchview_run(model, x):
    import torchview

    torchview.draw_graph(model, input_data=x, depth=10)


def available(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def measure(runs: dict[str, Callable], model, x, rounds: int) -> dict[str, tuple[float, float, float, tuple]]:
    """Per run: median and minimum seconds, the median over rounds of its time over the first
    run's in the same round (the VM's speed drifts between rounds: paired ratios drift less), and
    that median's 95% interval. Each round starts at the next run, so that none always follows
    the same one."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    with torch.no_grad():
        for run in runs.values():  # warm up
            run(model, x)
        for round_ in range(rounds):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                start = time.perf_counter()
                runs[name](model, x)
                times[name].append(time.perf_counter() - start)
    first = times[names[0]]
    results = {}
    for name, values in times.items():
        ratios = [v / f for v, f in zip(values, first)]
        results[name] = (statistics.median(values), min(values), statistics.median(ratios), median_interval(ratios))
    return results


def median_interval(values: list[float]) -> tuple[float, float]:
    """A distribution-free 95% confidence interval of the median of ``values`` (order statistics:
    the ranks n/2 -+ 0.98 sqrt(n))."""
    ordered, n = sorted(values), len(values)
    k = max(0, math.floor((n - 1.96 * math.sqrt(n)) / 2))
    return ordered[k], ordered[n - 1 - k]


def report(title: str, model, x, rounds: int, peers: bool = True) -> None:
    model.eval()
    with torch.no_grad(), shapetrace.trace(model) as t:
        model(x)
    ops, calls = len(t.ops), len(t.modules)
    runs = {"plain forward": lambda m, v: m(v), "bare TorchFunctionMode": bare, **traced_runs(traced)}
    if peers and available("torchinfo"):
        runs["torchinfo 1.8 summary"] = torchinfo_run
    if peers and available("torchview") and available("graphviz"):
        runs["torchview draw_graph"] = torchview_run
    results = measure(runs, model, x, rounds)
    plain, plain_min, *_ = results["plain forward"]
    print(f"\n{title}: {ops} ops, {calls} module calls, plain forward {plain * 1e3:.2f} ms (min {plain_min * 1e3:.2f})")
    print(f"  {'':26s} {'ratio':>7s} {'µs/op':>8s} {'min ratio':>10s} {'min µs/op':>10s} {'paired':>7s} {'95% interval':>13s}")
    for name, (value, best, paired, (low, high)) in results.items():
        print(
            f"  {name:26s} {value / plain:7.3f} {(value - plain) / ops * 1e6:8.2f}"
            f" {best / plain_min:10.3f} {(best - plain_min) / ops * 1e6:10.2f} {paired:7.3f}  {low:.3f}-{high:.3f}"
        )


def report_op_path(rounds: int) -> None:
    """Microseconds per op on a chain of tiny ops: plain, the bare mode, and shapetrace."""
    x, w = torch.rand(4, 4), torch.rand(4, 4)
    ops = 3 * CHAIN_STEPS

    def run_bare(_m, _x):
        with BareMode():
            op_chain(x, w)

    def run_traced(_m, _x):
        with shapetrace.trace(symbolic=False):
            op_chain(x, w)

    runs = {"plain": lambda _m, _x: op_chain(x, w), "bare TorchFunctionMode": run_bare, **traced_runs(run_traced)}
    results = measure(runs, None, None, rounds)
    bare_median, bare_min, *_ = results["bare TorchFunctionMode"]
    print(f"\nop path ({ops} tiny ops, no modules): µs per op, and above the bare mode")
    print(f"  {'':26s} {'µs/op':>7s} {'above':>7s} {'min µs/op':>10s} {'min above':>10s}")
    for name, (value, best, *_) in results.items():
        print(
            f"  {name:26s} {value / ops * 1e6:7.2f} {(value - bare_median) / ops * 1e6:7.2f}"
            f" {best / ops * 1e6:10.2f} {(best - bare_min) / ops * 1e6:10.2f}"
        )


def report_fixed_cost(rounds: int) -> None:
    """Milliseconds to enter and leave a trace of the small ViT around an empty block: back to back
    (warm caches), and right after a plain forward, as in a traced forward, with the trace's own
    deletion (the forward's tensors have evicted the tracer's code and data from the caches)."""
    model, x = SmallViT(), torch.rand(8, 3, 128, 128)

    def empty(_m, _x):
        with shapetrace.trace(model):
            pass

    value, best, *_ = measure({"empty trace": empty}, None, None, rounds * 10)["empty trace"]
    cooled = []
    with torch.no_grad():
        for _ in range(rounds):
            model(x)
            start = time.perf_counter()
            empty(None, None)  # the trace is deleted on return
            cooled.append(time.perf_counter() - start)
    modules = len(list(model.modules()))
    print(
        f"\nfixed cost per trace ({modules} modules, empty block): {value * 1e3:.3f} ms (min {best * 1e3:.3f});"
        f" after a forward: {statistics.median(cooled) * 1e3:.3f} ms (min {min(cooled) * 1e3:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no-peers", action="store_true", help="only plain, bare mode and shapetrace")
    parser.add_argument("--python-only", action="store_true", help="trace on the pure-Python recorder only")
    options = parser.parse_args()
    if options.python_only:
        recorder.TRACE_RECORDER = recorder.Recorder
    rounds, peers = options.rounds, not options.no_peers
    torch.set_num_threads(1)
    torch.manual_seed(0)
    report("SmallViT (B 8, 128x128, patch 16, D 192, 6 blocks)", SmallViT(), torch.rand(8, 3, 128, 128), rounds, peers)
    report("SmallGPT (B 8, T 64, D 128, 4 blocks)", SmallGPT(), torch.randint(0, 1000, (8, 64)), rounds, peers)
    tiny = SmallViT(img=32, patch=16, dim=16, depth=6, heads=2)
    report("tiny ViT (B 1, D 16: the tracer's own cost)", tiny, torch.rand(1, 3, 32, 32), rounds * 4, peers)
    report_op_path(rounds)
    report_fixed_cost(rounds)


if __name__ == "__main__":
    main()
