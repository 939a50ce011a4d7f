"""Cost per op as a trace grows: capture, building the records, the JSON file, the table.

A trace of N ops is N/30 forwards of a tiny 1-layer model (about 30 ops each), traced in one
block. For each N it prints microseconds per op (per row for the table) and, for the JSON file,
the peak memory the writing adds per op (tracemalloc, measured in a separate pass because tracing
allocations slows everything). Capture should stay flat in N: the entries are tuples the cyclic
garbage collector stops tracking, so a long trace is not rescanned at every collection.

    python bench/bench_scale.py --ops 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import tempfile
import time
import tracemalloc

import torch
from models import SmallGPT
from rich.console import Console

import shapetrace


def traced(model: torch.nn.Module, idx: torch.Tensor, forwards: int) -> tuple[float, shapetrace.Trace]:
    start = time.perf_counter()
    with torch.no_grad(), shapetrace.trace(symbolic=False) as t:
        for _ in range(forwards):
            model(idx)
    return time.perf_counter() - start, t


def seconds(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def json_peak(t: shapetrace.Trace, path: str) -> int:
    """Peak bytes allocated while writing the JSON file (the records already built)."""
    tracemalloc.start()
    t.save_json(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, nargs="+", default=[10_000, 100_000])
    options = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SmallGPT(vocab=50, ctx=8, dim=8, depth=1, heads=2).eval()
    idx = torch.randint(0, 50, (1, 8))
    with shapetrace.trace(symbolic=False) as probe:
        model(idx)
    per_forward = len(probe)
    print(f"{'ops':>10s} {'capture':>9s} {'records':>9s} {'json':>9s} {'json peak':>10s} {'table':>9s}")
    print(f"{'':>10s} {'µs/op':>9s} {'µs/op':>9s} {'µs/op':>9s} {'B/op':>10s} {'µs/row':>9s}")
    for ops in options.ops:
        capture, t = traced(model, idx, max(1, ops // per_forward))
        n = len(t)
        records = seconds(lambda t=t: (t.ops, t.modules))
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "trace.json")
            write = seconds(lambda t=t, path=path: t.save_json(path))
            peak = json_peak(t, path)
        console = Console(file=io.StringIO(), width=160, color_system=None)
        table = seconds(lambda t=t, console=console: console.print(t.table()))
        print(
            f"{n:>10,d} {capture / n * 1e6:9.2f} {records / n * 1e6:9.2f} {write / n * 1e6:9.2f} "
            f"{peak / n:10.0f} {table / n * 1e6:9.2f}"
        )
        del t
        gc.collect()


if __name__ == "__main__":
    main()
