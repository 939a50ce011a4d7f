"""Cost per op as a trace grows: capture, building the records, the JSON file, the table.

A trace of N ops is, in one traced block, either N/33 forwards of a tiny 1-layer model (33 ops and
15 module calls each: module hooks and a plain forward of 7-8 µs per op included), or N/900 runs
of a chain of tiny ops outside any module (the op path alone). For each N it prints microseconds
per op (per row for the table): the same work untraced (plain), traced, and the traced block's
full garbage collections (count and
seconds, part of capture); building the records, the diagnostics (which the JSON file holds),
writing the JSON file with both already built, printing the table (``t.print``, as the command
prints it); and the peak memory per op that capturing and
writing the JSON file allocate (tracemalloc, each in a separate pass because tracing allocations
slows everything).
Capture should stay flat in N: the recorder's raw entries are tuples the cyclic garbage collector
stops tracking (capture/records.py), so a long trace is not rescanned by full collections.

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
from collections.abc import Callable

import torch
from models import CHAIN_STEPS, SmallGPT, op_chain
from rich.console import Console

import shapetrace


class Workload:
    """``repeats`` runs of ``run`` (each making ``ops_per_run`` ops), untraced or traced."""

    def __init__(self, name: str, run: Callable[[], object]) -> None:
        self.name, self.run = name, run
        with shapetrace.trace(symbolic=False) as probe:
            run()
        self.ops_per_run = len(probe)

    def plain(self, repeats: int) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            for _ in range(repeats):
                self.run()
        return time.perf_counter() - start

    def traced(self, repeats: int) -> tuple[float, shapetrace.Trace]:
        start = time.perf_counter()
        with torch.no_grad(), shapetrace.trace(symbolic=False) as t:
            for _ in range(repeats):
                self.run()
        return time.perf_counter() - start, t


class FullCollections:
    """Counts the full (oldest generation) garbage collections while it is open, and their seconds."""

    def __enter__(self) -> FullCollections:
        self.count, self.seconds, self._started = 0, 0.0, 0.0
        gc.callbacks.append(self._heard)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._heard)

    def _heard(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._started


def capture_peak(work: Workload, repeats: int) -> tuple[int, int]:
    """Peak bytes allocated while capturing, and the ops captured."""
    tracemalloc.start()
    _, t = work.traced(repeats)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, len(t)


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
    x, w = torch.rand(4, 4), torch.eye(4) * 0.5  # the chain's values settle at 1
    workloads = (
        Workload("tiny GPT forwards (33 ops, 15 module calls each)", lambda: model(idx)),
        Workload(f"chains of tiny ops outside modules ({3 * CHAIN_STEPS} ops each)", lambda: op_chain(x, w)),
    )
    head = ("ops", "plain", "capture", "full GCs", "GC s", "cap. peak", "records", "diagnose", "json", "json peak", "table")
    units = ("", "µs/op", "µs/op", "", "", "B/op", "µs/op", "µs/op", "µs/op", "B/op", "µs/row")
    print(" ".join(f"{h:>10s}" for h in head))
    print(" ".join(f"{u:>10s}" for u in units))
    for work in workloads:
        print(work.name)
        for ops in options.ops:
            measure(work, ops)


def measure(work: Workload, ops: int) -> None:
    """Print one row: ``work`` traced to about ``ops`` ops."""
    repeats = max(1, ops // work.ops_per_run)
    untraced = work.plain(repeats)
    gc.collect()
    with FullCollections() as full:
        capture, t = work.traced(repeats)
    n = len(t)
    records, diagnose, write, peak, table = reading(t)
    del t
    gc.collect()
    capture_bytes, captured = capture_peak(work, repeats)
    gc.collect()
    print(
        f"{n:>10,d} {untraced / n * 1e6:10.2f} {capture / n * 1e6:10.2f} {full.count:10d} {full.seconds:10.2f}"
        f" {capture_bytes / captured:10.0f} {records / n * 1e6:10.2f} {diagnose / n * 1e6:10.2f} {write / n * 1e6:10.2f}"
        f" {peak / n:10.0f} {table / n * 1e6:10.2f}"
    )


def reading(t: shapetrace.Trace) -> tuple[float, float, float, int, float]:
    """Seconds to build the records, the diagnostics, to write the JSON file (and its peak bytes),
    and to print the table."""
    records = seconds(lambda: (t.ops, t.modules))
    diagnose = seconds(lambda: t.diagnostics)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trace.json")
        write = seconds(lambda: t.save_json(path))
        peak = json_peak(t, path)
    console = Console(file=io.StringIO(), width=160, color_system=None)
    table = seconds(lambda: t.print(console))
    return records, diagnose, write, peak, table

if __name__ == "__main__":
    main()
