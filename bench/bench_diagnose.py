"""Cost of the debugger: what every trace pays at its end, and what reading diagnostics costs.

    python bench/bench_diagnose.py [--rounds 20]

One thread, medians. Rows per model:
- plain forward: the model alone;
- evidence at trace end: ``collect_evidence`` (which tensor ids are parameters, buffers, plain
  attributes), paid by every trace when it ends; the recording hot path is unchanged;
- diagnostics (lints): reading ``Trace.diagnostics`` of a clean trace, records already built;
- failing call arguments: ``describe_call`` in the recorder's except branch, paid once per failure.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from models import SmallGPT, SmallViT

import shapetrace
from shapetrace.capture.recorder import Recorder
from shapetrace.diagnose.evidence import EvidenceListener, collect_evidence, describe_call


def median_time(run: Callable[[], object], rounds: int, number: int = 1) -> float:
    run()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            run()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def report(title: str, model: torch.nn.Module, x: torch.Tensor, rounds: int) -> None:
    model.eval()
    with torch.no_grad():
        plain = median_time(lambda: model(x), rounds)
        recorder = Recorder()
        recorder.hook_modules(model)
        evidence = median_time(lambda: collect_evidence(recorder, EvidenceListener()), rounds, number=20)
        recorder.release()
        with shapetrace.trace(model) as t:
            model(x)
        assert t.ops  # records built once, as any reader would
        lints = median_time(lambda: (t.__dict__.pop("diagnostics", None), t.diagnostics), rounds)
        arguments = median_time(lambda: describe_call((x, (-1, 192)), {"dim": 1}), rounds, number=200)
    modules = sum(1 for _ in model.modules())
    print(f"\n{title}: {len(t.ops)} ops, {modules} modules, {len(t.diagnostics)} diagnostics")
    print(f"{'':32}{'time':>12}{'vs plain':>10}")
    rows = [
        ("plain forward", plain),
        ("evidence at trace end", evidence),
        ("diagnostics (lints)", lints),
        ("failing call arguments", arguments),
    ]
    for name, seconds in rows:
        print(f"{name:32}{seconds * 1e3:10.3f} ms{seconds / plain:10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    torch.set_num_threads(1)
    torch.manual_seed(0)
    report("SmallViT (128x128, batch 2)", SmallViT(), torch.rand(2, 3, 128, 128), rounds)
    report("SmallGPT (64 tokens, batch 2)", SmallGPT(), torch.randint(0, 1000, (2, 64)), rounds)


if __name__ == "__main__":
    main()
