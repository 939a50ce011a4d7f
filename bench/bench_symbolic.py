"""Symbolic shapes: what the pass costs next to the concrete trace, and tracing a 7B model on meta.

    python bench/bench_symbolic.py [--rounds 5] [--skip-llama]

1. Seed examples and the bench models: plain forward, the concrete trace (trace() block), and the
   symbolic pass (run when the trace is first read), in ms, with the pass/concrete ratio and the
   module calls the pass did not replay (repeated blocks). The pass's first run in a process also
   imports torch's symbolic machinery: reported apart.
2. The recorder's added work: arguments kept for ops outside module calls (trace() vs
   trace(symbolic=False) on a loop of such ops), per op.
3. Depth: the LLaMA-7B layout on meta at 2 and 32 layers, the pass of a trace() and trace_shapes.
4. A LLaMA-style 7B model (RMSNorm, rotary, GQA attention, SwiGLU; 32 layers, d 4096, 32 heads,
   8 KV heads, FFN 14336, vocab 32000) built on the meta device and traced with trace_shapes:
   time and peak RSS, each in a fresh process (baseline: the same process importing only).
One thread, medians. The zoo of architectures is measured by bench_zoo.py.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import shapetrace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "examples"))


# --- a LLaMA-style model ------------------------------------------------------------------------


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight  # (B, T, D)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)                                                  # 2 x (B, h, T, d/2)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin                          # (B, h, T, d)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, kv_heads: int) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        self.wq = nn.Linear(dim, heads * self.head_dim, bias=False)
        self.wk = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(heads * self.head_dim, dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q = self.wq(x).view(B, T, self.heads, self.head_dim).transpose(1, 2)      # (B, h, T, d)
        k = self.wk(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)   # (B, g, T, d)
        v = self.wv(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)   # (B, g, T, d)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)              # (B, h, T, d)
        v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)              # (B, h, T, d)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)              # (B, h, T, d)
        return self.wo(y.transpose(1, 2).reshape(B, T, D))                       # (B, T, D)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))                          # (B, T, D)


class Layer(nn.Module):
    def __init__(self, dim: int, heads: int, kv_heads: int, hidden: int) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(dim)
        self.attention = Attention(dim, heads, kv_heads)
        self.ffn_norm = RMSNorm(dim)
        self.feed_forward = FeedForward(dim, hidden)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin)                 # (B, T, D)
        return x + self.feed_forward(self.ffn_norm(x))                           # (B, T, D)


class Llama(nn.Module):
    def __init__(self, vocab: int = 32000, dim: int = 4096, layers: int = 32, heads: int = 32,
                 kv_heads: int = 8, hidden: int = 14336, theta: float = 10000.0) -> None:  # fmt: skip
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(Layer(dim, heads, kv_heads, hidden) for _ in range(layers))
        self.norm = RMSNorm(dim)
        self.output = nn.Linear(dim, vocab, bias=False)
        head_dim = dim // heads
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        B, T = ids.shape
        t = torch.arange(T, device=ids.device, dtype=torch.float32)              # (T,)
        freqs = torch.outer(t, self.inv_freq)                                    # (T, d/2)
        emb = torch.cat((freqs, freqs), dim=-1)                                  # (T, d)
        cos, sin = emb.cos(), emb.sin()                                          # (T, d)
        x = self.tok_embeddings(ids)                                             # (B, T, D)
        for layer in self.layers:
            x = layer(x, cos, sin)                                               # (B, T, D)
        return self.output(self.norm(x))                                         # (B, T, V)


# --- 1. pass vs concrete -----------------------------------------------------------------------


def seed_cases():
    import attention
    import conv_rules
    import fashion_cnn
    import mlp
    import patch_embed
    import tokenize_image
    from models import SmallGPT, SmallViT

    def block(function):  # a seed's own function: names come from its torch.rand(B, ...) calls
        return (lambda: function()), {}

    def model(m, x, **names):
        m.eval()
        return (lambda: m(x)), {"model": m, **names}

    return [
        ("tokenize_image (script)", *block(tokenize_image.tokenize_image)),
        ("mlp (script)", *block(mlp.mlp)),
        ("patch_embed (script)", *block(patch_embed.patch_embedding)),
        ("attention (script)", *block(attention.attention)),
        ("conv_rules (script)", *block(conv_rules.conv_rules)),
        ("fashion_cnn (script)", *block(fashion_cnn.fashion_cnn)),
        ("SmallViT B 8 128x128", *model(SmallViT(), torch.rand(8, 3, 128, 128), dims="B C H W")),
        ("SmallGPT B 8 T 64", *model(SmallGPT(), torch.randint(0, 1000, (8, 64)), dims="B T")),
    ]


def measure_pass(name, run, options, rounds):
    model = options.pop("model", None)
    plain, concrete, symbolic = [], [], []
    status = ops = None
    for _ in range(rounds):
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            start = time.perf_counter()
            run()
            plain.append(time.perf_counter() - start)
            start = time.perf_counter()
            with shapetrace.trace(model, symbolic_budget=math.inf, **options) as t:
                run()
            concrete.append(time.perf_counter() - start)
        start = time.perf_counter()
        status = t.symbolic  # runs the pass
        symbolic.append(time.perf_counter() - start)
        ops = len(t)
    p, c, s = (statistics.median(v) * 1e3 for v in (plain, concrete, symbolic))
    print(f"  {name:26s} {ops:5d} {p:9.1f} {c:10.1f} {s:10.1f} {s / c:8.1f} {status.reused_calls:6d}  {status.state}")


def report_passes(rounds: int) -> None:
    start = time.perf_counter()
    B, C = 2, 3
    with shapetrace.trace() as t:
        torch.rand(B, C).flatten()
    assert t.symbolic.state == "ran"  # the first pass imports torch's symbolic machinery (torch._dynamo)
    print(f"\n1. Symbolic pass vs concrete trace (ms, medians of {rounds}); first pass in a process: "
          f"+{(time.perf_counter() - start):.1f} s of imports")  # fmt: skip
    print(f"  {'':26s} {'ops':>5s} {'plain':>9s} {'concrete':>10s} {'symbolic':>10s} {'ratio':>8s} {'reused':>6s}  state")
    for name, run, options in seed_cases():
        measure_pass(name, run, options, rounds)


# --- 2. the recorder's added work ----------------------------------------------------------------


def report_hot_path(rounds: int) -> None:
    x = torch.rand(4, 4)
    n = 2000

    def loop():
        y = x
        for _ in range(n):
            y = (y * 0.5).transpose(0, 1)

    times: dict[str, list[float]] = {"plain": [], "on": [], "off": []}
    for _ in range(rounds * 4):  # CPU time, interleaved; min and median per op
        for kind in times:
            start = time.process_time()
            if kind == "plain":
                loop()
            else:
                with shapetrace.trace(symbolic=kind == "on"):
                    loop()
            times[kind].append((time.process_time() - start) / (2 * n) * 1e6)
    (plain, on, off) = ((min(v), statistics.median(v)) for v in times.values())
    print("\n2. Recorder cost of keeping arguments for ops outside module calls (inside modules: one check)")
    print(f"  µs per op (min / median CPU time): plain {plain[0]:.2f} / {plain[1]:.2f}, "
          f"traced with the pass on {on[0]:.2f} / {on[1]:.2f}, off {off[0]:.2f} / {off[1]:.2f}: "
          f"+{on[0] - off[0]:.2f} / +{on[1] - off[1]:.2f} µs")  # fmt: skip


# --- 3. depth ------------------------------------------------------------------------------------


def report_depth(rounds: int) -> None:
    """The pass on the LLaMA-7B layout on meta at 2 and 32 layers (rounds interleaved, minima:
    the ratio is what matters): repeated layers are replayed once."""
    print(f"\n3. Depth: the LLaMA-7B layout on meta, B 2, T 256 (ms, minima of {rounds} interleaved rounds)")
    print(f"  {'':22s} {'layers':>6s} {'ops':>6s} {'pass':>9s} {'reused':>6s}   32 / 2")
    models = {}
    for layers in (2, 32):
        with torch.device("meta"):
            models[layers] = Llama(layers=layers)
    ids = torch.empty(2, 256, dtype=torch.long, device="meta")
    spec = shapetrace.TensorSpec("B T", dtype=torch.long)
    for kind in ("trace() replay", "trace_shapes"):
        times: dict[int, list[float]] = {2: [], 32: []}
        seen = {}
        for _ in range(rounds):
            for layers, model in models.items():
                if kind == "trace_shapes":
                    start = time.perf_counter()
                    t = shapetrace.trace_shapes(model, spec, B=2, T=256)
                    times[layers].append(time.perf_counter() - start)
                else:
                    with shapetrace.trace(model, dims="B T", symbolic_budget=math.inf) as t:
                        model(ids)
                    start = time.perf_counter()
                    _ = t.symbolic  # runs the pass
                    times[layers].append(time.perf_counter() - start)
                seen[layers] = (len(t), t.symbolic.reused_calls)
        for layers in (2, 32):
            ratio = f"{min(times[32]) / min(times[2]):6.2f}x" if layers == 32 else ""
            ops, reused = seen[layers]
            print(f"  {kind:22s} {layers:6d} {ops:6d} {min(times[layers]) * 1e3:9.0f} {reused:6d}   {ratio}")


# --- 4. LLaMA 7B on meta -------------------------------------------------------------------------


def llama_child(kind: str) -> dict:
    start = time.perf_counter()
    if kind == "baseline":  # what a pass imports, and a ShapeEnv (which imports torch._dynamo)
        importlib.import_module("shapetrace._private.torch_symbolic").make_fake_mode()
        return {"seconds": time.perf_counter() - start, "rss_mb": _peak_rss_mb()}
    with torch.device("meta"):
        model = Llama()
    built = time.perf_counter()
    t = shapetrace.trace_shapes(model, shapetrace.TensorSpec("B T", dtype=torch.long), B=2, T=2048, D=4096, V=32000)
    done = time.perf_counter()
    logits = t.ops[-1].outputs[0]
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "build_s": built - start, "trace_s": done - built, "ops": len(t.ops), "modules": len(t.modules),
        "state": t.symbolic.state, "logits": logits.expr, "logits_shape": list(logits.shape),
        "layer_out": next(op.outputs[0].expr for op in t.ops if op.module == "layers.31.feed_forward.w2"),
        "rss_mb": _peak_rss_mb(), "error": t.error.message if t.error else None,
    }  # fmt: skip


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss keeps the parent's peak across fork + exec)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report_llama() -> None:
    def child(kind: str) -> dict:
        done = subprocess.run([sys.executable, __file__, "--child", kind], capture_output=True, text=True, check=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
        return json.loads(done.stdout.strip().splitlines()[-1])

    base, run = child("baseline"), child("llama")
    print("\n4. LLaMA-style 7B on meta, trace_shapes(B=2, T=2048): fresh process each")
    print(f"  parameters {run['parameters'] / 1e9:.2f} B, build {run['build_s']:.1f} s, trace {run['trace_s']:.1f} s, "
          f"{run['ops']} ops, {run['modules']} module calls, state {run['state']}")  # fmt: skip
    print(f"  peak RSS {run['rss_mb']:.0f} MB (baseline: imports only, {base['rss_mb']:.0f} MB); "
          f"weights in float32 would be {run['parameters'] * 4 / 2**30:.1f} GiB")  # fmt: skip
    print(f"  logits {run['logits']} = {tuple(run['logits_shape'])}; layers.31 FFN out {run['layer_out']}")
    if run["error"]:
        print(f"  error: {run['error']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-llama", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    torch.set_num_threads(1)
    if options.child:
        print(json.dumps(llama_child(options.child)))
        return
    torch.manual_seed(0)
    report_passes(options.rounds)
    report_hot_path(options.rounds)
    report_depth(options.rounds)
    if not options.skip_llama:
        report_llama()


if __name__ == "__main__":
    main()
