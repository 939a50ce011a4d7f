"""Where modules are built: the ``self.fc = nn.Linear(...)`` a fix changes, and the diagnosis of a
torch module whose construction raised (``nn.GroupNorm(32, 48)``)."""

from __future__ import annotations

import ast
import inspect
import linecache
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch import nn

from shapetrace.capture.source import short_location
from shapetrace.diagnose.callsite import Assignment, CallSite, assignment_of, call_site_at
from shapetrace.diagnose.checking import Fix, fixed, passes
from shapetrace.diagnose.diagnostic import ERROR, Diagnostic
from shapetrace.diagnose.evidence import Building

if TYPE_CHECKING:
    from shapetrace.diagnose.provenance import Dataflow


class Construction:
    """The call that built a module: ``nn.Linear(64 * 7 * 7, 2 * z_dim)`` in
    ``self.to_moments = nn.Linear(64 * 7 * 7, 2 * z_dim)``, and edits of its arguments."""

    def __init__(self, site: CallSite, call: ast.Call, file: str, line: int) -> None:
        self.site = site
        self.call = call
        self.file = file
        self.line = line

    @classmethod
    def of_assignment(cls, found: Assignment) -> Construction | None:
        value = found.value
        return cls(found.site, value, found.file, found.line) if isinstance(value, ast.Call) else None

    @property
    def text(self) -> str:
        return self.site.text(self.call)

    @property
    def location(self) -> str:
        return short_location(self.file, self.line)

    def argument_text(self, position: int, name: str) -> str | None:
        node = self.site.argument(position, name, self.call)
        return self.site.text(node) if node is not None else None

    def with_argument(self, position: int, name: str, value: str) -> tuple[str, tuple] | None:
        """The call with argument ``name`` (or the one at ``position``) set to ``value``: its new
        text and the edits; ``None`` when the call does not pass that argument plainly."""
        node = self.site.argument(position, name, self.call)
        if node is None:
            return None
        changes = {node: value}
        return self.site.rewritten(changes, self.call), self.site.edits(changes)

    def with_keyword(self, name: str, value: str) -> tuple[str, tuple]:
        """The call with ``name=value`` (replaced, or added after the last argument)."""
        changes = self.site.keyword_change(name, value, self.call)
        return self.site.rewritten(changes, self.call), self.site.edits(changes)


def module_construction(flow: Dataflow, path: str) -> Construction | None:
    """Where the module at ``path`` was built: ``self.<name> = <call>`` in its parent's class
    (``None`` for an item of a ModuleList or Sequential, or when the source is not found)."""
    if not path:
        return None
    parent, _, name = path.rpartition(".")
    owner = flow.evidence.module_classes.get(parent)
    if owner is None or not name.isidentifier():
        return None
    found = assignment_of(owner, name)
    return Construction.of_assignment(found) if found is not None else None


# --- a torch module whose construction raised -------------------------------------------------


def explain_building(building: Building, message: str) -> Diagnostic:
    """Why building a torch module raised, at the user's line that built it."""
    site = call_site_at(building.code, building.lasti)
    built = (
        Construction(site, site.node, building.file, building.line)
        if site and isinstance(site.node, ast.Call)
        else None
    )
    call = built.text if built is not None else f"nn.{building.cls.__name__}(...)"
    for explain in (_groups, _heads):
        found = explain(building, built, call)
        if found is not None:
            text, fix = found
            return _diagnostic(building, message, text, fix)
    given = ", ".join(f"{name}={value!r}" for name, value in building.arguments if value is not None)
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    text = f"`{call}` raised while it was built: {first}. It was given {given}."
    return _diagnostic(building, message, text, None)


def _diagnostic(building: Building, message: str, text: str, fix: Fix | None) -> Diagnostic:
    code = linecache.getline(building.file, building.line).strip()
    return Diagnostic(
        kind="module-arguments", severity=ERROR, message=text, file=building.file, line=building.line,
        op_index=None, code=code, op=building.cls.__name__, fix=fix.text if fix else None,
        fix_checked=passes(fix.check) if fix else False, edits=fix.edits if fix else (),
    )  # fmt: skip


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0] if n > 0 else []


def _groups(building: Building, built: Construction | None, call: str) -> tuple[str, Fix] | None:
    """GroupNorm's groups, or a conv's groups, that do not divide the channels."""
    if issubclass(building.cls, nn.GroupNorm):
        groups, channels = building.argument("num_groups"), building.argument("num_channels")
        if not _positive(groups, channels) or channels % groups == 0:
            return None
        counts, name, position = (channels,), "num_groups", 0
        what = f"splits num_channels={channels} into num_groups={groups} groups, but {channels} is not a multiple of {groups}"
    elif issubclass(building.cls, _CONVS):
        groups = building.argument("groups")
        in_ch, out_ch = building.argument("in_channels"), building.argument("out_channels")
        if not _positive(groups, in_ch, out_ch) or (in_ch % groups == 0 and out_ch % groups == 0):
            return None
        counts, name, position = (in_ch, out_ch), "groups", 6
        what = (
            f"splits in_channels={in_ch} and out_channels={out_ch} into groups={groups} groups, but "
            + " and ".join(f"{c}" for c in counts if c % groups)
            + f" is not a multiple of {groups}"
        )
    else:
        return None
    good = math.gcd(groups, *counts)
    common = [d for d in divisors(counts[0]) if all(c % d == 0 for c in counts)]
    text = f"`{call}` {what}. Group counts that divide {' and '.join(map(str, counts))}: {', '.join(map(str, common))}."
    changed = built.with_argument(position, name, str(good)) if built is not None else None
    reason = f"{good} = gcd({groups}, {', '.join(map(str, counts))}) divides {' and '.join(map(str, counts))}, and every channel count that {groups} divided"
    fix_text = f"`{changed[0]}`: {reason}" if changed else f"{name}={good}: {reason}"
    check = _build_check(building, {name: good})
    return text, Fix(fix_text, changed[1] if changed else (), check)


def _heads(building: Building, built: Construction | None, call: str) -> tuple[str, Fix] | None:
    """Attention heads that do not divide the embedding width."""
    for width_name, heads_name in (("embed_dim", "num_heads"), ("d_model", "nhead")):
        width, heads = building.argument(width_name), building.argument(heads_name)
        if _positive(width, heads) and width % heads:
            break
    else:
        return None
    good = max(d for d in divisors(width) if d <= heads)
    text = (
        f"`{call}` splits {width_name}={width} into {heads_name}={heads} heads of equal width, but {width} is "
        f"not a multiple of {heads}. Head counts that divide {width}: {', '.join(map(str, divisors(width)))}."
    )
    changed = built.with_argument(1, heads_name, str(good)) if built is not None else None
    reason = f"{width} // {good} = {width // good} per head"
    fix_text = f"`{changed[0]}` ({reason})" if changed else f"{heads_name}={good} ({reason})"
    return text, Fix(fix_text, changed[1] if changed else (), _build_check(building, {heads_name: good}))


def _positive(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)


def _build_check(building: Building, changes: dict[str, Any]) -> Callable[[], bool]:
    """A check: the module, built with its recorded arguments on the meta device, raises; with
    ``changes``, it builds."""
    cls = building.cls
    arguments = dict(building.arguments)
    takes_device = "device" in inspect.signature(cls.__init__).parameters
    if takes_device:
        arguments["device"] = "meta"

    def build(extra: dict[str, Any]) -> nn.Module:
        if not takes_device:
            raise ValueError("cannot build it without allocating")
        return cls(**{**arguments, **extra})

    return fixed(lambda: build({}), lambda: build(changes))
