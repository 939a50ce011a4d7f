"""The ``shapetrace`` command against the plain script: wall clock of whole processes, and where the
command's extra time goes.

    python bench/bench_cli.py [--runs 7] [SCRIPT]      (default: examples/patch_embed.py)

1. ``python SCRIPT`` and ``python -m shapetrace SCRIPT`` (what the ``shapetrace`` command runs),
   interleaved, minimum of ``--runs`` each, and their ratio (the goal: <= 1.5x). shapetrace runs
   as installed: from its compiled bytecode, as torch and the other packages do (pip compiles
   it). Where ``PYTHONDONTWRITEBYTECODE`` is set (this shell's environment), the command is also
   timed as that environment runs it, compiling shapetrace's sources at every start (~0.1 s).
2. The command's time in one process, split: Python and torch imported, shapetrace's imports, the
   traced script, the symbolic pass (its first use in a process imports torch's fake tensors,
   ShapeEnv, torch._dynamo and sympy, then runs a few ops to fill torch's tables: each shown apart),
   printing the table, and the interpreter's exit after ``main`` returned. Minimum of ``--runs``
   fresh processes per part, shapetrace as installed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCRIPT = ROOT / "examples" / "patch_embed.py"

# Run in a fresh process by `_phases`: the command's main, timed part by part (stdout: one JSON line).
_PHASES = r"""
import io, json, sys, time, contextlib
started = time.perf_counter()
import torch
torch_imported = time.perf_counter()
import shapetrace.cli.main as cli_main
shapetrace_imported = time.perf_counter()
import shapetrace.symbolic.job as job
spent = {"trace": 0.0, "symbolic": 0.0, "symbolic imports": 0.0, "torch._dynamo import": 0.0,
         "symbolic warm-up": 0.0}

def timed(name, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - start
    return wrapper

cli_main.run_script = timed("trace", cli_main.run_script)
cli_main.run_with_progress = timed("symbolic", cli_main.run_with_progress)
run = job.Job.run

def job_run(self, progress=None):
    if self.has_names() and "shapetrace.symbolic.engine" not in sys.modules:
        start = time.perf_counter()
        import shapetrace.symbolic.engine
        spent["symbolic imports"] += time.perf_counter() - start
        start = time.perf_counter()
        import torch._dynamo  # what ShapeEnv() imports (torch.fx.experimental.validator)
        spent["torch._dynamo import"] += time.perf_counter() - start
        from shapetrace._private import torch_symbolic
        torch_symbolic.warm_up = timed("symbolic warm-up", torch_symbolic.warm_up)
    return run(self, progress)

job.Job.run = job_run
with contextlib.redirect_stdout(io.StringIO()):
    start = time.perf_counter()
    cli_main.main()  # the command's own arguments (sys.argv[1:]), as `shapetrace` calls it
    command = time.perf_counter() - start
spent["rendering"] = command - spent["trace"] - spent["symbolic"]
spent["symbolic pass"] = spent["symbolic"] - sum(v for k, v in spent.items() if k.startswith(("symbolic ", "torch.")))
del spent["symbolic"]
print(json.dumps({"python + torch import": torch_imported - started + START,
                  "shapetrace imports": shapetrace_imported - torch_imported, **spent,
                  "main returned": time.time()}))
"""


# shapetrace as installed: its bytecode written once (next to its sources, as for any package) and read
INSTALLED = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _wall(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    return time.perf_counter() - start


def _interpreter_start() -> float:
    """Seconds for ``python -c pass`` (added to the in-process import time of torch)."""
    return _wall([sys.executable, "-c", "pass"])


def _phases(script: Path) -> dict[str, float]:
    code = _PHASES.replace("START", repr(_interpreter_start()))
    out = subprocess.run(
        [sys.executable, "-c", code, str(script)], check=True, capture_output=True, text=True, cwd=ROOT,
        env=INSTALLED,
    )  # fmt: skip
    ended = time.time()
    found = json.loads(out.stdout.strip().splitlines()[-1])
    found["interpreter exit"] = ended - found.pop("main returned")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", nargs="?", type=Path, default=DEFAULT_SCRIPT)
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    env_note = os.environ.get("PYTHONPATH", "")
    print(f"script {options.script.relative_to(ROOT) if options.script.is_absolute() else options.script}"
          f"  (PYTHONPATH={env_note or '-'})")  # fmt: skip
    command = [sys.executable, "-m", "shapetrace", str(options.script)]
    _wall(command, INSTALLED)  # writes shapetrace's bytecode if it is not there yet
    timed = {"plain": ([sys.executable, str(options.script)], None), "installed": (command, INSTALLED)}
    if "PYTHONDONTWRITEBYTECODE" in os.environ:
        timed["no bytecode"] = (command, None)
    seconds: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(options.runs):  # interleaved: the machine's load hits all alike
        for name, (run, env) in timed.items():
            seconds[name].append(_wall(run, env))
    plain, installed = min(seconds["plain"]), min(seconds["installed"])
    print(f"python SCRIPT      {plain:6.2f} s  (min of {options.runs})")
    print(f"shapetrace SCRIPT  {installed:6.2f} s  (as installed: from shapetrace's compiled bytecode)")
    print(f"ratio              {installed / plain:6.2f}x  (goal <= 1.5x)")
    if "no bytecode" in seconds:
        unbuilt = min(seconds["no bytecode"])
        print(f"  no bytecode      {unbuilt:6.2f} s  {unbuilt / plain:.2f}x  (PYTHONDONTWRITEBYTECODE, set here: "
              "shapetrace's sources compiled at every start)")  # fmt: skip
    parts: dict[str, list[float]] = {}
    for _ in range(options.runs):
        for name, value in _phases(options.script).items():
            parts.setdefault(name, []).append(value)
    print(f"\nthe command, part by part (min of {options.runs} processes):")
    for name, values in parts.items():
        print(f"  {name:<24s} {min(values):6.3f} s")
    print(f"  {'sum of minima':<24s} {sum(min(v) for v in parts.values()):6.3f} s")


if __name__ == "__main__":
    main()
