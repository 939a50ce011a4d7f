"""`--write` and `--check` on long scripts: seconds and milliseconds per line, which should stay
flat as the script grows (linear cost).

Each script is a model whose forward has N tensor lines in the seeds' style (a chain of views,
linears and adds, each with its `# (B, ...)` comment); `--check` reads the comments, `--write`
rewrites them after they were stripped. Both run in-process (`shapetrace.cli.main.main`), so
Python's and torch's start-up are not counted.

    python bench/bench_comments.py --lines 500 1000 2000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import tempfile
import time
from pathlib import Path

from shapetrace.cli.main import main as shapetrace_main

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


def run(*args: str) -> float:
    start = time.perf_counter()
    quiet = contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())
    with quiet[0], quiet[1], contextlib.suppress(SystemExit):
        shapetrace_main(list(args))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[250, 500, 1000, 2000])
    options = parser.parse_args()
    print(f"{'lines':>6s} {'--check s':>10s} {'ms/line':>8s} {'--write s':>10s} {'ms/line':>8s}")
    with tempfile.TemporaryDirectory() as folder:
        for lines in options.lines:
            path = Path(folder) / f"long_{lines}.py"
            path.write_text(script(lines))
            check = run("--check", str(path))
            path.write_text(re.sub(r"  +# \(.*\)$", "", script(lines), flags=re.M))
            write = run("--write", str(path))
            print(f"{lines:6d} {check:10.2f} {check / lines * 1e3:8.2f} {write:10.2f} {write / lines * 1e3:8.2f}")


if __name__ == "__main__":
    main()
