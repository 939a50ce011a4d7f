"""`--write` and `--check` on long scripts: seconds and milliseconds per line, which should stay
flat as the script grows (linear cost).

Each script is a model whose forward has N tensor lines in the seeds' style (a chain of views,
linears and adds, each with its `# (B, ...)` comment); `--check` reads the comments, `--write`
rewrites them after they were stripped. Each run is a process of its own, as the command is, timed
around `shapetrace.cli.main.main`: Python's and torch's start-up are not counted, nor is what the
first symbolic pass of a process pays once (torch._dynamo's import, torch's tables), as a short
script is checked first. Each time is the minimum of ``--repeat`` runs (the machine may be
shared). The times include tracing the script and its symbolic pass; ``--phases`` splits them.

    python bench/bench_comments.py --lines 500 1000 2000 [--repeat 3] [--phases]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import shapetrace.cli.main as cli_main

_LINES = [
    ("x = self.fc(x)", "# (B, T, D)"),
    ("x = x + 1", "# (B, T, D)"),
    ("y = x.view(B, T, 4, D // 4)", "# (B, T, 4, D/4)"),
    ("x = y.flatten(2)", "# (B, T, D)"),
]


def script(lines: int) -> str:
    body = "\n".join(f"        {code:<36s}{comment}" for code, comment in (_LINES * lines)[:lines])
    return f'''import torch
from torch import nn

D = 16


class Long(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, D)

    def forward(self, x):
        B, T, _ = x.shape
{body}
        return x


def main():
    B, T = 2, 3
    x = torch.rand(B, T, D)                   # (B, T, D)
    Long()(x)


if __name__ == "__main__":
    main()
'''


_PHASES = {"run_script": "trace", "run_with_progress": "pass", "run_comment_mode": "comments"}
spent: dict[str, float] = {}


def _timed(name: str, function: Callable) -> Callable:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

    return timed


for _attribute, _phase in _PHASES.items():
    setattr(cli_main, _attribute, _timed(_phase, getattr(cli_main, _attribute)))


def run(*args: str) -> tuple[float, dict[str, float]]:
    """Seconds for ``shapetrace *args`` in this process, and the seconds of each phase."""
    spent.clear()
    start = time.perf_counter()
    quiet = contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())
    with quiet[0], quiet[1], contextlib.suppress(SystemExit):
        cli_main.main(list(args))
    return time.perf_counter() - start, dict(spent)


def _child(mode: str, path: str) -> None:
    """One measured run in a process of its own, after a warm-up run on a short script."""
    with tempfile.TemporaryDirectory() as folder:
        warm = Path(folder) / "warm.py"
        warm.write_text(script(20))
        run("--check", str(warm))  # the process's first pass: imports and torch's tables
    gc.collect()  # the warm-up's garbage: a new `shapetrace` process has none
    seconds, phases = run(f"--{mode}", path)
    print(json.dumps({"seconds": seconds, "phases": phases}))


def measure(path: Path, text: str, mode: str) -> tuple[float, dict[str, float]]:
    """``shapetrace --mode path`` on ``text`` in a fresh, warmed-up process."""
    path.write_text(text)
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], check=True, capture_output=True, text=True
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    return found["seconds"], found["phases"]


def _phases_text(phases: dict[str, float]) -> str:
    return "  ".join(f"{name} {phases.get(name, 0.0):5.2f}" for name in _PHASES.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--phases", action="store_true", help="also the seconds of trace, pass and comments")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        _child(*options.child)
        return
    print(f"{'lines':>6s} {'--check s':>10s} {'ms/line':>8s} {'--write s':>10s} {'ms/line':>8s}")
    with tempfile.TemporaryDirectory() as folder:
        for lines in options.lines:
            path = Path(folder) / f"long_{lines}.py"
            stripped = re.sub(r"  +# \(.*\)$", "", script(lines), flags=re.M)
            checks, writes = [], []
            for _ in range(options.repeat):  # interleaved
                checks.append(measure(path, script(lines), "check"))
                writes.append(measure(path, stripped, "write"))
            (check, check_phases), (write, write_phases) = min(checks), min(writes)
            print(f"{lines:6d} {check:10.2f} {check / lines * 1e3:8.2f} {write:10.2f} {write / lines * 1e3:8.2f}")
            if options.phases:
                print(f"{'':6s} --check: {_phases_text(check_phases)}   --write: {_phases_text(write_phases)}")


if __name__ == "__main__":
    main()
