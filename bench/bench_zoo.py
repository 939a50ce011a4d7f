"""The symbolic pass over the zoo (bench/zoo.py): what capture and the pass cost next to a plain forward.

    python bench/bench_zoo.py [--only resnet18,gpt2_hf] [--rounds 5] [--timeout 60] [--json FILE]

Each model is measured in a process of its own (one thread, eval mode, no_grad), in interleaved
rounds of: a plain forward; ``trace(model, symbolic=False)`` around it (capture), then
reading its ``t.ops`` (the records, with concrete shapes); and ``trace(model, dims=spec)``
around it followed by reading ``t.ops`` (capture + the pass + the records, with expressions).
The pass costs (capture + pass + records) - (capture + records), paired by round, median: what
the symbolic pass adds to reading a trace. Building the records is paid by every reader of a
trace, pass or not (0.04-0.4x a forward, median 0.18x); ``+rec`` reports the pass with it
counted, as this bench measured before. Ratios are to the plain forward's median. Before the
rounds each process runs the model, a capture and a tiny symbolic trace, untimed: torch's symbolic machinery is imported once per process (reported apart). Each
timed part starts after a full collection, so that none pays for an earlier round's garbage.
``1st x`` is the first round's pass: what a user's one pass per process costs (the model's
first ops on symbolic sizes fill torch's and sympy's caches), after the imports.

A pass still running after ``--timeout`` seconds is stopped by a signal alarm (the process is
killed if it does not answer) and reported as a timeout; the next model runs. Rounds stop early
when another one would take a model's passes past ``--timeout`` in all.

Summary: median and max of the pass ratio, the share of models whose pass ``ran``, and the depth
ratio: the pass on the LLaMA-7B layout on ``meta`` at 32 layers over 2 layers.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import io
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


# Passes are measured without their budget (trace(symbolic_budget=)); a pass that would have run
# past the default budget (the larger of 2 s and 5x the traced forward) is reported "over budget".
UNLIMITED = {"symbolic_budget": float("inf")} if "symbolic_budget" in inspect.signature(
    __import__("shapetrace").trace.__init__).parameters else {}  # fmt: skip


class PassTimeout(BaseException):
    """Raised by the alarm inside a pass that ran past the timeout (a BaseException: the pass
    catches its own errors as Exception and must not swallow this one)."""


# --- one model, in its own process -----------------------------------------------------------------


def _raise_timeout(signum, frame):
    raise PassTimeout


def _first_pass_imports() -> float:
    """Seconds of the process's first pass on a trivial trace (imports torch's symbolic machinery)."""
    import shapetrace

    start = time.perf_counter()
    B, C = 2, 3
    with shapetrace.trace() as t:
        torch.rand(B, C).flatten()
    assert t.symbolic.state == "ran", t.symbolic.describe()
    return time.perf_counter() - start


def measure(name: str, rounds: int, timeout: float) -> dict:
    """Plain forward, capture and capture + pass of one zoo model, ``rounds`` times interleaved."""
    from zoo import ZOO

    import shapetrace

    entry = ZOO[name]
    result: dict = {"name": name, "source": entry.source, "group": entry.group, "error": None, "timeout": False}
    torch.manual_seed(0)
    case = entry.build()
    model = case.model.eval()
    result["parameters"] = sum(p.numel() for p in model.parameters())
    result["imports_s"] = _first_pass_imports()
    plain, capture, records, traced, read = [], [], [], [], []
    signal.signal(signal.SIGALRM, _raise_timeout)
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        case()  # warm-up: lazy inits, allocator, the source lines a capture reads
        with shapetrace.trace(model, symbolic=False) as t:
            case()
        result["ops"] = len(t)
        for _ in range(rounds):
            gc.collect()
            start = time.perf_counter()
            case()
            plain.append(time.perf_counter() - start)
            gc.collect()
            start = time.perf_counter()
            with shapetrace.trace(model, symbolic=False) as captured:
                case()
            capture.append(time.perf_counter() - start)
            start = time.perf_counter()
            len(captured.ops)  # the records any reading of a trace builds, with or without the pass
            records.append(time.perf_counter() - start)
            del captured
            gc.collect()
            start = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                with shapetrace.trace(model, dims=case.dims, **UNLIMITED) as t:
                    case()
                block_end = time.perf_counter()
                result["ops"] = len(t.ops)  # reading the ops runs the pass
                end = time.perf_counter()
            except PassTimeout:
                result["timeout"] = True
                break
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            traced.append(block_end - start)
            read.append(end - block_end)
            spent = sum(traced) + sum(read) - sum(capture) - sum(records)
            if spent + (traced[-1] + read[-1] - capture[-1] - records[-1]) > timeout:
                break  # another round would take this model's passes past the timeout
        caught = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in seen))
    plain_ms = statistics.median(plain) * 1e3
    result.update(rounds=len(read), plain_min_ms=min(plain) * 1e3, plain_median_ms=plain_ms,
                  capture_median_ms=statistics.median(capture) * 1e3,
                  capture_ratio=statistics.median(capture) * 1e3 / plain_ms, warnings=caught[:3])  # fmt: skip
    if result["timeout"]:
        result.update(state="timeout", reason=f"pass over {timeout:g} s", pass_median_ms=timeout * 1e3,
                      pass_ratio=timeout * 1e3 / plain_ms, symbolic_ops=0, fallback_ops=0)  # fmt: skip
        return result
    passes = [block + reading - captured - built
              for block, reading, captured, built in zip(traced, read, capture, records)]  # fmt: skip
    with_records = [each + built for each, built in zip(passes, records)]
    status = t.symbolic
    result.update(traced_median_ms=statistics.median(traced) * 1e3, read_median_ms=statistics.median(read) * 1e3,
                  pass_median_ms=statistics.median(passes) * 1e3, pass_ratio=statistics.median(passes) * 1e3 / plain_ms,
                  first_pass_ratio=passes[0] * 1e3 / plain_ms, records_median_ms=statistics.median(records) * 1e3,
                  with_records_ratio=statistics.median(with_records) * 1e3 / plain_ms,
                  state=status.state, reason=status.reason, symbolic_ops=status.symbolic_ops,
                  fallback_ops=status.fallback_ops, reused_calls=getattr(status, "reused_calls", 0))  # fmt: skip
    if UNLIMITED:  # the pass ran without a budget: would it have finished within the default one?
        default_budget = max(2.0, 5 * statistics.median(traced))
        result["within_default_budget"] = statistics.median(passes) <= default_budget
        if result["state"] == "ran" and not result["within_default_budget"]:
            result["state"] = "over budget"
    return result


def child_main(name: str, rounds: int, timeout: float) -> None:
    torch.set_num_threads(1)
    try:
        result = measure(name, rounds, timeout)
    except Exception as error:  # the model itself failed (a zoo bug): report it, the bench goes on
        result = {"name": name, "error": f"{type(error).__name__}: {error}"[:300], "timeout": False}
    print(json.dumps(result))


# --- the bench -----------------------------------------------------------------------------------------


def run_child(name: str, rounds: int, timeout: float) -> dict:
    """Measure one model in a fresh process; a process that hangs past the alarm is killed."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--rounds", str(rounds),
               "--timeout", str(timeout)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=2 * timeout + 120, env=env)
    except subprocess.TimeoutExpired:
        return {"name": name, "error": None, "timeout": True, "state": "timeout", "reason": "process killed"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"name": name, "error": f"exit {done.returncode}: {tail}"[:300], "timeout": False}
    return json.loads(lines[-1])


def _row(r: dict) -> str:
    if r.get("error"):
        return f"{r['name']:24s} error: {r['error']}"
    if "plain_median_ms" not in r:
        return f"{r['name']:24s} {r['state']}: {r['reason']}"
    over = ">" if r["timeout"] else " "
    state = r["state"] + (f" ({r['fallback_ops']} by value)" if r["fallback_ops"] else "")
    if r["state"] not in ("ran", "timeout", "over budget") and r["reason"]:
        state += f": {r['reason'][:70]}"
    if r.get("reused_calls"):
        state += f", {r['reused_calls']} calls reused"
    return (f"{r['name']:24s} {r['source'][:5]:5s} {r['ops']:5d} {r['plain_min_ms']:8.1f} {r['plain_median_ms']:8.1f}"
            f" {r['capture_ratio']:6.2f} {over}{r['pass_median_ms']:9.0f} {over}{r['pass_ratio']:7.1f} "
            f"{over}{r.get('first_pass_ratio', r['pass_ratio']):6.1f} {over}{r.get('with_records_ratio', r['pass_ratio']):6.1f} "
            f"{r['rounds']:3d}  {state}")  # fmt: skip


def summary(results: list[dict]) -> list[str]:
    zoo = [r for r in results if r.get("group", "zoo") == "zoo" and not r.get("error") and "pass_ratio" in r]
    errors = [r["name"] for r in results if r.get("error")]
    lines = []
    if zoo:
        ratios = [r["pass_ratio"] for r in zoo]
        worst = max(zoo, key=lambda r: r["pass_ratio"])
        over = ">" if worst["timeout"] else ""
        ran = sum(r["state"] == "ran" for r in zoo)  # "over budget" is not "ran"
        lines.append(f"{len(zoo)} models: pass/plain median {statistics.median(ratios):.1f}x, max {over}{worst['pass_ratio']:.1f}x "
                     f"({worst['name']}); capture/plain median {statistics.median(r['capture_ratio'] for r in zoo):.2f}x; "
                     f"status ran {ran}/{len(zoo)} = {100 * ran / len(zoo):.1f}%")  # fmt: skip (40/41 is 97.6%, not 98%)
        firsts = [r.get("first_pass_ratio", r["pass_ratio"]) for r in zoo]
        lines.append(f"  the pass with the records counted in it (+rec): median "
                     f"{statistics.median(r.get('with_records_ratio', r['pass_ratio']) for r in zoo):.1f}x")
        lines.append(f"  first pass in a process (after the imports): median {statistics.median(firsts):.1f}x, "
                     f"over 3x: {sum(x > 3 for x in firsts)}, over 10x: {sum(x > 10 for x in firsts)}")  # fmt: skip
        lines.append(f"  over 3x: {sum(x > 3 for x in ratios)}, over 10x: {sum(x > 10 for x in ratios)}, "
                     f"timeouts: {sum(r['timeout'] for r in zoo)}; first pass in a process imports for "
                     f"{statistics.median(r['imports_s'] for r in zoo):.2f} s (median, not counted)")  # fmt: skip
    depth = {r["name"]: r for r in results if r.get("group") == "depth" and "pass_median_ms" in r}
    if {"llama_meta_2", "llama_meta_32"} <= depth.keys():
        two, many = depth["llama_meta_2"], depth["llama_meta_32"]
        over = ">" if many["timeout"] else ""
        lines.append(f"depth: LLaMA-7B layout on meta, pass {two['pass_median_ms'] / 1e3:.2f} s at 2 layers, "
                     f"{over}{many['pass_median_ms'] / 1e3:.2f} s at 32: {over}{many['pass_median_ms'] / two['pass_median_ms']:.1f}x")  # fmt: skip
    if errors:
        lines.append(f"errors (not counted): {', '.join(errors)}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated zoo names (default: all)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per pass (default 60)")
    parser.add_argument("--json", type=Path, help="save the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child_main(options.child, options.rounds, options.timeout)
        return
    from zoo import ZOO, zoo_names

    names = zoo_names("zoo") + zoo_names("depth")
    if options.only:
        names = [n.strip() for n in options.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in ZOO]
        if unknown:
            parser.error(f"unknown model(s) {', '.join(unknown)}; the zoo has: {', '.join(ZOO)}")
    print(f"Symbolic pass over {len(names)} models: torch {torch.__version__}, 1 thread, up to {options.rounds} "
          f"rounds, timeout {options.timeout:g} s per pass; times in ms, ratios to the plain forward's median")  # fmt: skip
    print(f"{'model':24s} {'src':5s} {'ops':>5s} {'plain':>8s} {'median':>8s} {'capt x':>6s} {'pass ms':>10s} "
          f"{'pass x':>8s} {'1st x':>7s} {'+rec':>7s} {'rds':>3s}  state")  # fmt: skip
    results = []
    started = time.perf_counter()
    for name in names:
        result = run_child(name, options.rounds, options.timeout)
        results.append(result)
        print(_row(result), flush=True)
    lines = summary(results)
    print("\n".join(lines))
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"(bench wall time {time.perf_counter() - started:.0f} s; load average at the end {load} on {os.cpu_count()} cores)")
    if options.json:
        meta = {"torch": torch.__version__, "python": platform.python_version(), "rounds": options.rounds,
                "timeout_s": options.timeout, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average_end": load}  # fmt: skip
        options.json.write_text(json.dumps({"meta": meta, "models": results, "summary": lines}, indent=1))


if __name__ == "__main__":
    main()
