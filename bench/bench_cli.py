"""The ``shapetrace`` command against the plain script: wall clock of whole processes, and where the
command's extra time goes.

    python bench/bench_cli.py [--runs 7] [SCRIPT]      (default: examples/patch_embed.py)

1. ``python SCRIPT`` and ``python -m shapetrace SCRIPT`` (what the ``shapetrace`` command runs),
   interleaved, minimum of ``--runs`` each, and their ratio (the goal: <= 1.5x). The command runs
   shapetrace as installed: a copy of the package with its bytecode compiled (as pip installs it,
   and as torch and the other packages run). It is also timed from the source tree as this
   environment runs it: with ``PYTHONDONTWRITEBYTECODE`` set and no bytecode there, shapetrace's
   ~100 sources are compiled at every start (~0.1 s). The source tree is left as it is.
2. The command's time in one process, split: Python and torch imported, shapetrace's imports, the
   traced script, the symbolic pass (its first use in a process imports torch's fake tensors,
   ShapeEnv, torch._dynamo and sympy, then runs a few ops to fill torch's tables: each shown apart),
   printing the table, and the interpreter's exit after ``main`` returned. Minimum of ``--runs``
   fresh processes per part, shapetrace as installed.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
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


def _installed(folder: Path) -> dict[str, str]:
    """The environment that runs a copy of the shapetrace package this bench imports, its bytecode
    compiled in it, as pip installs a package."""
    package = Path(importlib.util.find_spec("shapetrace").origin).parent
    shutil.copytree(package, folder / "shapetrace", ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(folder / "shapetrace", quiet=1)
    path = os.pathsep.join(filter(None, (str(folder), os.environ.get("PYTHONPATH"))))
    return {**os.environ, "PYTHONPATH": path}


def _wall(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env
    )
    return time.perf_counter() - start


def _interpreter_start() -> float:
    """Seconds for ``python -c pass`` (added to the in-process import time of torch)."""
    return _wall([sys.executable, "-c", "pass"])


def _phases(script: Path, env: dict[str, str]) -> dict[str, float]:
    code = _PHASES.replace("START", repr(_interpreter_start()))
    out = subprocess.run(
        [sys.executable, "-c", code, str(script)], check=True, capture_output=True, text=True, cwd=ROOT,
        env=env,
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
    with tempfile.TemporaryDirectory() as folder:
        installed_env = _installed(Path(folder))
        command = [sys.executable, "-m", "shapetrace", str(options.script)]
        timed = {
            "plain": ([sys.executable, str(options.script)], None),
            "installed": (command, installed_env),
            "source tree": (command, None),
        }
        seconds: dict[str, list[float]] = {name: [] for name in timed}
        for _ in range(options.runs):  # interleaved: the machine's load hits all alike
            for name, (run, env) in timed.items():
                seconds[name].append(_wall(run, env))
        parts: dict[str, list[float]] = {}
        for _ in range(options.runs):
            for name, value in _phases(options.script, installed_env).items():
                parts.setdefault(name, []).append(value)
    plain, installed, source = (min(seconds[name]) for name in timed)
    how = "as this environment runs it"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        how = "PYTHONDONTWRITEBYTECODE is set: its sources compiled at every start, unless built before"
    print(f"python SCRIPT      {plain:6.2f} s  (min of {options.runs})")
    print(f"shapetrace SCRIPT  {installed:6.2f} s  (as installed: shapetrace's bytecode compiled)")
    print(f"ratio              {installed / plain:6.2f}x  (goal <= 1.5x)")
    print(f"  source tree      {source:6.2f} s  {source / plain:.2f}x  ({how})")
    print(f"\nthe command, part by part (min of {options.runs} processes):")
    for name, values in parts.items():
        print(f"  {name:<24s} {min(values):6.3f} s")
    print(f"  {'sum of minima':<24s} {sum(min(v) for v in parts.values()):6.3f} s")


if __name__ == "__main__":
    main()
