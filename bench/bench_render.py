"""Rendering a big trace: seconds per view and output, for a ~100,000-op trace.

    python bench/bench_render.py [--ops 100000] [--layers 24]

The trace: a 24-layer SmallGPT (D 16, T 16) run again and again in one `shapetrace.trace()`
block, as a script traced by the CLI would (no model given; ~655 ops per forward). Timed once
each, in this order: building the records (`Trace.ops`, `Trace.modules`; shapetrace's own
reading of the trace, not rendering), `Trace.diagnostics` (read by the header and the tree's
marks), then for each view building it (`make_view`: the tree, folding, filters; then its rows,
header and footer) and each output:
console (rich, 160 columns, to a file), HTML, SVG, Markdown, text. The symbolic pass is off.
"""

from __future__ import annotations

import argparse
import io
import time

import torch
from models import SmallGPT
from rich.console import Console

import shapetrace
from shapetrace.render.export import to_html, to_markdown, to_svg, to_text
from shapetrace.render.views import make_view

VIEWS = {
    "tree (folded)": dict(view="tree"),
    "tree, nothing folded": dict(view="tree", expand="*"),
    "tree --module blocks.*.attn": dict(view="tree", module="blocks.*.attn"),
    "table (flat)": dict(view="table"),
    "table --changes": dict(view="table", changes=True),
    "summary": dict(view="summary"),
}
OUTPUTS = {"html": to_html, "svg": to_svg, "markdown": to_markdown, "text": to_text}


def console_output(view) -> str:
    console = Console(file=io.StringIO(), width=160)
    console.print(view)
    return console.file.getvalue()


def timed(action):
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=100_000, help="ops to record (about)")
    parser.add_argument("--layers", type=int, default=24)
    options = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SmallGPT(vocab=50, ctx=16, dim=16, depth=options.layers, heads=2).eval()
    idx = torch.randint(0, 50, (2, 16))
    per_forward = 2 + 3 + 27 * options.layers + 2
    runs = max(1, options.ops // per_forward)
    seconds, t = timed(lambda: _trace(model, idx, runs))
    print(f"traced {runs} forwards of a {options.layers}-layer SmallGPT: {len(t):,} ops in {seconds:.1f} s")
    print(f"  records (Trace.ops, Trace.modules): {timed(lambda: (t.ops, t.modules))[0]:.2f} s")
    print(f"  Trace.diagnostics:                  {timed(lambda: t.diagnostics)[0]:.2f} s\n")
    outputs = ["build", "console", *OUTPUTS]
    print(f"{'view':30s} {'rows':>9s} " + " ".join(f"{name:>9s}" for name in outputs) + "   (seconds)")
    for name, options_ in VIEWS.items():
        build, view = timed(lambda o=options_: _built(make_view(t, **o)))
        times = [build, timed(lambda v=view: console_output(v))[0]]
        times += [timed(lambda v=view, f=f: f(v))[0] for f in OUTPUTS.values()]
        print(f"{name:30s} {len(view.rows):9,d} " + " ".join(f"{s:9.2f}" for s in times))


def _built(view):
    view.rows, view.header, view.footer  # noqa: B018 -- built once, cached on the view
    return view


def _trace(model, idx, runs):
    with torch.no_grad(), shapetrace.trace(symbolic=False) as t:
        for _ in range(runs):
            model(idx)
    return t


if __name__ == "__main__":
    main()
