"""The planted-bug scripts in ``scripts/``: what each diagnosis must say, and how to score it.

Each script is a seed-style model with one bug; ``# planted`` marks the line the diagnosis (or,
for a bug that raises nothing, the lint) must point at. A case is scored on four counts:

- line: a diagnosis of the failure (a lint of the expected kind) is at the planted line;
- cause: its message has the words that explain the bug beyond torch's own message;
- fix: it has a fix;
- checked: the fix is marked checked, contains the expected code, and its edits, applied to a
  copy of the script, make that copy run (and, for a lint, no longer lint).

``python tests/diagnose/planted_scripts.py`` prints the table (with ``PYTHONPATH`` pointing at
the shapetrace to measure).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "scripts"


@dataclass(frozen=True)
class Case:
    script: str  # file name in scripts/, without .py
    kind: str  # the expected diagnostic kind
    operand: str | None  # the operand at fault, as written in the source (None: no operand)
    cause: tuple[str, ...]  # words the message must contain
    fix: str  # code the fix must contain
    lint: bool = False  # the bug raises nothing: the finding is a lint
    checked: bool = True  # the fix can be re-run (an unused module's fix cannot)

    @property
    def path(self) -> Path:
        return SCRIPTS / f"{self.script}.py"

    @property
    def line(self) -> int:
        lines = self.path.read_text().splitlines()
        (found,) = [i + 1 for i, text in enumerate(lines) if text.rstrip().endswith("# planted")]
        return found


CASES = [
    # failures
    Case("unet_time_embedding", "broadcast", "self.time_proj(t_emb)", ("right to left", "no axes for dims 2, 3"),
         "self.time_proj(t_emb)[:, :, None, None]"),
    Case("rectified_flow_timestep", "broadcast", "t", ("right to left", "no axes for dims 1, 2, 3"),
         "t[:, None, None, None]"),
    Case("gpt_loss_flatten", "loss-target", "targets", ("classes in dim 1", "(B*T, V)"),
         "F.cross_entropy(logits.flatten(0, 1), targets.flatten())"),
    Case("clip_labels_column", "loss-target", "labels", ("one class index per row", "a column"),
         "labels.squeeze(1)"),
    Case("cnn_float_targets", "loss-target", "labels", ("class indices", "float32", "probabilities"),
         "labels.long()"),
    Case("clip_text_vocab", "embedding-index", "text", ("294", "num_embeddings=256", "token_embedding"),
         "nn.Embedding(295, dim)"),
    Case("unet_groupnorm_groups", "module-arguments", None, ("48", "1, 2, 3, 4, 6, 8, 12, 16, 24, 48"),
         "nn.GroupNorm(16, out_ch)"),
    Case("convnext_layernorm", "norm-shape", "h", ("channels-first", "dim 1"),
         "self.norm(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)"),
    Case("vit_batchnorm_tokens", "norm-shape", "h", ("channels in dim 1", "(B, N, C)"),
         "self.bn(h.transpose(1, 2)).transpose(1, 2)"),
    Case("unet_norm_before_conv", "norm-shape", "x", ("96 channels", "built for 32"),
         "nn.GroupNorm(8, 96)"),
    Case("vae_encoder_small_images", "kernel-size", "x", ("16 → 8 → 4 → 2 → 1", "H ≥ 33"),
         "padding=1"),
    Case("cnn_pool_small_images", "kernel-size", "F.relu(conv(x))", ("24 → 12 → 6 → 3 → 1", "H ≥ 32"),
         "ceil_mode=True"),
    Case("clip_sdpa_padding_mask", "attention-mask", "pad_mask", ("(B, h, L, S)", "(2, 1, 1, 6)"),
         "pad_mask[:, None, None, :]"),
    Case("gpt_padding_mask", "broadcast", "pad_mask == 0", ("right to left", "(2, 1, 1, 8)"),
         "(pad_mask == 0)[:, None, None, :]"),
    Case("dit_einsum_heads", "einsum", "k", ("subscript h", "operand 1"),
         '"bhnd,bmhd->bhnm"'),
    Case("dit_cross_attention_view", "view-size", "t", ("448 elements", "(B, N, h, d)"),
         "t.view(B, -1, self.heads, self.head_dim).transpose(1, 2)"),
    Case("gpt_mask_attribute", "device-mismatch", "self.mask[:N, :N] == 0", ("plain tensor attribute",),
         'self.register_buffer("mask", torch.ones(max_len, max_len).tril())'),
    Case("dit_factory_device", "device-mismatch", "ones", ("has no device=",),
         "torch.ones(x.shape[-1], device=x.device)"),
    Case("patch_embed_input_device", "device-mismatch", "x", ("enters the model", "while the model is on meta"),
         "image.to(next(model.parameters()).device)"),
    Case("vae_linear_in_features", "matmul-shape", "h", ("in_features=3136", "4096"),
         "nn.Linear(4096, 2 * z_dim)"),
    Case("unet_skip_channels", "conv-channels", "x", ("expects 32 input channels", "is 64"),
         "nn.Conv2d(64, out_ch, 3, padding=1)"),
    # bugs that raise nothing
    Case("regression_broadcast_mean", "broadcast-reduced", "pred", ("(8, 8)", "larger than both"),
         "pred.squeeze(-1) - y", lint=True),
    Case("vae_mse_broadcast", "broadcast-reduced", "value", ("(8, 8)", "larger than both"),
         "F.mse_loss(value.squeeze(-1), returns)", lint=True),
    Case("gpt_heads_no_transpose", "heads-split", "q", ("(B, N, h, d)", "transpose(1, 2)"),
         "q.reshape(B, N, self.heads, self.head_dim).transpose(1, 2)", lint=True),
    Case("clip_merge_no_transpose", "heads-merge", "out", ("(B, h, N, d)", "side by side"),
         "out.transpose(1, 2).reshape(B, N, D)", lint=True),
    Case("unet_plain_list", "unregistered-module", None, ("plain list", "parameters()"),
         "nn.ModuleList([ConvBlock(a, b) for a, b in zip(chans, chans[1:])])", lint=True),
    Case("dit_unused_norm", "unused-parameter", None, ("never", "norm1"),
         "self.norm2(x)", lint=True, checked=False),
    Case("clip_scale_attribute", "unregistered-tensor", "self.scale", ("plain tensor attribute", "model.to"),
         'self.register_buffer("scale", torch.full((embed_dim,), embed_dim**-0.5))', lint=True),
]  # fmt: skip


@dataclass
class Score:
    line: bool = False
    cause: bool = False
    fix: bool = False
    checked: bool = False


def traced(path: Path, symbolic: bool = True):
    """Run the script under the CLI's trace; its trace."""
    from shapetrace.cli.runner import run_script

    run = run_script(str(path), [], symbolic=symbolic)
    return run.trace


def finding(case: Case, trace) -> object | None:
    """The diagnosis a case is about: the failure's, or the lint at the planted line."""
    diagnostics = trace.diagnostics
    if case.lint:
        at_line = [d for d in diagnostics if d.line == case.line and d.file == str(case.path)]
        of_kind = [d for d in at_line if d.kind == case.kind]
        return (of_kind or at_line or [None])[0]
    return next((d for d in diagnostics if d.severity == "error"), None)


def apply_edits(source: str, edits) -> str:
    """``source`` with every edit applied (each replaces a span given by line and column)."""
    lines = source.splitlines(keepends=True)
    for edit in sorted(edits, key=lambda e: (e.line, e.col), reverse=True):
        start = sum(len(text) for text in lines[: edit.line - 1]) + edit.col
        end = sum(len(text) for text in lines[: edit.end_line - 1]) + edit.end_col
        joined = "".join(lines)
        lines = (joined[:start] + edit.text + joined[end:]).splitlines(keepends=True)
    return "".join(lines)


def fixed_script_runs(case: Case, diagnostic, directory: Path) -> bool:
    """Apply the diagnostic's edits to a copy of the script: does the copy run (and not lint)?"""
    edits = [e for e in getattr(diagnostic, "edits", ()) if e.file == str(case.path)]
    if not edits:
        return False
    copy = directory / case.path.name
    copy.write_text(apply_edits(case.path.read_text(), edits))
    done = subprocess.run([sys.executable, str(copy)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return False
    if case.lint:
        trace = traced(copy)
        return not any(d.kind == case.kind for d in trace.diagnostics)
    return True


def score(case: Case, directory: Path) -> Score:
    result = Score()
    d = finding(case, traced(case.path))
    if d is None:
        return result
    result.line = d.line == case.line and (not case.lint or d.kind == case.kind)
    result.cause = all(word in d.message for word in case.cause)
    result.fix = d.fix is not None
    result.checked = (
        bool(getattr(d, "fix_checked", False))
        and case.fix in (d.fix or "")
        and fixed_script_runs(case, d, directory)
    )
    return result


def main() -> None:
    names = ("line", "cause", "fix", "checked")
    totals = {name: 0 for name in names}
    print(f"{'case':<28} {'kind':<20} " + " ".join(f"{n:>7}" for n in names))
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            result = score(case, Path(tmp))
            for name in names:
                totals[name] += getattr(result, name)
            marks = " ".join(f"{'✓' if getattr(result, n) else '·':>7}" for n in names)
            print(f"{case.script:<28} {case.kind:<20} {marks}")
    print(f"{'total (of ' + str(len(CASES)) + ')':<49} " + " ".join(f"{totals[n]:>7}" for n in names))


if __name__ == "__main__":
    main()
