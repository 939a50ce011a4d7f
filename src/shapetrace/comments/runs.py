"""What each source line produced, run by run: the value its shape comment describes.

A line's *steps* are the ops it called directly and the module calls it started (the ops inside
a module started from the line belong to that module's step). One *run* of a line is one
execution of it; a new run starts when the calling instruction does not move forward (a loop
iteration, the function called again), except for the ops a library function the line calls
makes one after the other (``rearrange(x, "b c h w -> b (h w) c")``: its permute and reshape
are one run).

A run's value is found by following the tensors it made: its steps' outputs, and what the
functions it called (``is_callee``) computed from them, minus what was consumed before the run
ended. So ``torch.cat([a.expand(...), x])`` is the cat, ``q, k, v = x.chunk(3, -1)`` the three
chunks, ``y = model(x)`` the module's output, ``q = self.split_heads(qkv[..., :D])`` what
``split_heads`` returned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shapetrace.capture.records import ModuleCall, OpRecord, TensorMeta

if TYPE_CHECKING:
    from shapetrace.trace import Trace

MAX_ALTERNATIVES = 4  # distinct runs shown before " | ..."
MAX_ITEMS = 6  # distinct tensors of one run shown before ", ..."

Site = tuple[str, int]
# is_callee(site, file, line): whether code at file:line can only run when called from `site`'s line.
IsCallee = Callable[[Site, str, int], bool]
# calls_at(file, line): the names the statement at file:line calls (`rearrange`, `view`, ...).
CallsAt = Callable[[str, int], "frozenset[str] | set[str]"]


@dataclass(frozen=True)
class Run:
    """One execution of a line: the tensors it produced and did not consume itself.

    ``context`` is the index of the module call the line ran in (``None`` outside any module);
    ``failed`` says a step of the run raised; ``order`` is its first op's index.
    """

    outputs: tuple[TensorMeta, ...]
    context: int | None
    failed: bool
    order: int


@dataclass(frozen=True)
class _Step:
    order: tuple[int, int]  # (first op index, 0 for a module call / 1 for an op)
    position: int
    inputs: tuple[TensorMeta, ...]
    outputs: tuple[TensorMeta, ...]
    failed: bool
    end: int  # index of the first op after the step
    call: int | None = None  # the module call of a module step
    name: str = ""  # an op step's op (`permute`, `+`)


def line_runs(
    trace: Trace, is_callee: IsCallee | None = None, calls_at: CallsAt | None = None
) -> dict[Site, list[Run]]:
    """``(file, line) -> runs`` for every line that called an op or started a module call;
    ``calls_at`` tells which ops the line called itself (the others ran inside a library call)."""
    modules: Sequence[ModuleCall] = trace.modules
    ops: Sequence[OpRecord] = trace.ops
    steps: dict[tuple[str, int, int | None], list[_Step]] = defaultdict(list)
    for call in modules:
        parent = modules[call.parent] if call.parent is not None else None
        if parent is not None and _site(parent) == _site(call):
            continue  # started by a module the same line called (e.g. inside nn.Sequential)
        step = _Step(
            (call.first_op, 0), call.lasti, call.inputs, call.outputs, call.failed, call.end_op, call.index
        )
        steps[(call.file, call.line, call.parent)].append(step)
    for op in ops:
        inside, context = _op_context(op, modules)
        if not inside:
            step = _Step((op.index, 1), op.lasti, op.inputs, op.outputs, op.failed, op.index + 1, name=op.op)
            steps[(op.file, op.line, context)].append(step)
    window = _Window(ops, modules, is_callee) if is_callee is not None else None
    runs: dict[Site, list[Run]] = defaultdict(list)
    for (file, line, context), found in steps.items():
        called = calls_at(file, line) if calls_at is not None else None
        groups = _split(sorted(found, key=lambda s: s.order), called)
        for i, group in enumerate(groups):
            limit = groups[i + 1][0].order[0] if i + 1 < len(groups) else len(ops)
            if window is not None:
                outputs, failed = window.value((file, line), group, limit)
            else:
                outputs, failed = _value(group), any(step.failed for step in group)
            runs[(file, line)].append(Run(outputs, context, failed, group[0].order[0]))
    for site_runs in runs.values():
        site_runs.sort(key=lambda run: run.order)
    return dict(runs)


# sole_caller(file, line): the one line that calls the function around file:line, if only one does.
SoleCaller = Callable[[str, int], "Site | None"]


def call_site_runs(trace: Trace, sole_caller: SoleCaller, taken: set[Site]) -> dict[Site, list[Run]]:
    """Runs of lines that make no op themselves (not in ``taken``) and call a user function no
    other line calls: one run per call, the tensors the function's ops made and did not consume
    (``loss = vae_loss(x, x_hat, mu, logvar)`` is the loss)."""
    modules: Sequence[ModuleCall] = trace.modules
    calls: dict[Site, list[list[OpRecord]]] = defaultdict(list)
    previous: set[Site] = set()
    for op in trace.ops:
        sites = _calling_sites(op, modules, sole_caller, taken)
        for site in sites:
            if site not in previous:  # a new call of the function
                calls[site].append([])
            calls[site][-1].append(op)
        previous = sites
    runs: dict[Site, list[Run]] = {}
    for site, found in calls.items():
        runs[site] = []
        for group in found:
            steps = [_Step((op.index, 1), op.lasti, op.inputs, op.outputs, op.failed, op.index + 1) for op in group]
            context = group[0].module_index
            while context is not None and sole_caller(modules[context].file, modules[context].line) == site:
                context = modules[context].parent  # a module the function called: the line runs outside it
            runs[site].append(Run(_value(steps), context, any(op.failed for op in group), group[0].index))
    return runs


def _calling_sites(op: OpRecord, modules: Sequence[ModuleCall], sole_caller: SoleCaller, taken: set[Site]) -> set[Site]:
    """The call-site lines an op ran on behalf of: the callers of its own line's function and of
    the lines that called the modules around it, and theirs in turn."""
    places = [_site(op)]
    index = op.module_index
    while index is not None:
        places.append(_site(modules[index]))
        index = modules[index].parent
    found: set[Site] = set()
    for place in places:
        site = sole_caller(*place)
        while site is not None and site not in found:
            found.add(site)
            site = sole_caller(*site)
    return found - taken


def _site(record: ModuleCall | OpRecord) -> Site:
    return (record.file, record.line)


def _op_context(op: OpRecord, modules: Sequence[ModuleCall]) -> tuple[bool, int | None]:
    """Whether ``op`` ran inside a module call its own line started, and the module call the
    line itself ran in."""
    site = _site(op)
    index, inside = op.module_index, False
    while index is not None:
        call = modules[index]
        if _site(call) != site:
            return inside, index
        inside, index = True, call.parent
    return inside, None


def _split(steps: list[_Step], called: frozenset[str] | set[str] | None = None) -> list[list[_Step]]:
    """Steps of one line in one context, cut into runs where the instruction does not advance,
    unless the step is an op the line did not call itself (one of a library function's ops)
    that takes the previous step's output."""
    runs: list[list[_Step]] = []
    for step in steps:
        if runs and 0 <= step.position <= runs[-1][-1].position and not _continues(step, runs[-1][-1], called):
            runs.append([])
        if not runs:
            runs.append([])
        runs[-1].append(step)
    return runs


def _continues(step: _Step, previous: _Step, called: frozenset[str] | set[str] | None) -> bool:
    """Whether ``step`` is the next op of the library call ``previous`` was made by."""
    if called is None or step.call is not None or not step.name.isidentifier() or step.name in called:
        return False
    made = {meta.tensor_id for meta in previous.outputs}
    return any(meta.tensor_id in made for meta in step.inputs)


def _value(events: Sequence[_Step], derived_only: Sequence[bool] = ()) -> tuple[TensorMeta, ...]:
    """The tensors ``events`` made and none of them consumed. An event flagged in
    ``derived_only`` (an op of a called function) adds its outputs only when it consumed one."""
    made: dict[int, tuple[int, int]] = {}  # tensor id -> (event, output) that made it last
    consumed: set[tuple[int, int]] = set()
    kept: list[tuple[int, int]] = []
    for i, event in enumerate(events):
        uses_line_tensor = False
        for meta in event.inputs:
            maker = made.get(meta.tensor_id)
            if maker is not None:
                consumed.add(maker)
                uses_line_tensor = True
        if derived_only and derived_only[i] and not uses_line_tensor:
            continue
        for j, meta in enumerate(event.outputs):
            made[meta.tensor_id] = (i, j)
            kept.append((i, j))
    return tuple(events[i].outputs[j] for i, j in kept if (i, j) not in consumed)


class _Window:
    """A run together with the ops of the functions it called (see the module docstring)."""

    def __init__(self, ops: Sequence[OpRecord], modules: Sequence[ModuleCall], is_callee: IsCallee) -> None:
        self.ops = ops
        self.modules = modules
        self.is_callee = is_callee

    def _chain(self, index: int | None):
        while index is not None:
            yield index
            index = self.modules[index].parent

    def _called(self, site: Site, start: int, chain: list[int]) -> bool:
        """Whether an op runs inside a module call made, after ``start``, by a function ``site`` called."""
        return any(
            self.modules[m].first_op >= start
            and self.is_callee(site, self.modules[m].file, self.modules[m].line)
            for m in chain
        )

    def value(self, site: Site, steps: list[_Step], limit: int) -> tuple[tuple[TensorMeta, ...], bool]:
        own_calls = {step.call for step in steps if step.call is not None}
        own_ops = {step.order[0] for step in steps if step.call is None}
        module_steps = sorted((s for s in steps if s.call is not None), key=lambda s: s.order)
        steps_end = max(step.end for step in steps)
        events: list[_Step] = []
        derived: list[bool] = []
        start = j = steps[0].order[0]
        while j < limit:
            while module_steps and module_steps[0].order[0] <= j:
                events.append(module_steps.pop(0))
                derived.append(False)
            op = self.ops[j]
            chain = list(self._chain(op.module_index))
            if own_calls.intersection(chain):
                pass  # inside a module step of the line
            elif j in own_ops:
                events.append(_Step((j, 1), op.lasti, op.inputs, op.outputs, op.failed, j + 1))
                derived.append(False)
            elif _site(op) == site:
                break  # the line again: its next run
            elif j < steps_end or self.is_callee(site, op.file, op.line) or self._called(site, start, chain):
                events.append(_Step((j, 1), op.lasti, op.inputs, op.outputs, op.failed, j + 1))
                derived.append(True)
            else:
                break  # code that did not run on behalf of this line
            j += 1
        events.extend(module_steps)  # module calls that ran no op
        derived.extend([False] * len(module_steps))
        return _value(events, derived), any(event.failed for event in events)


# --- rendering ---------------------------------------------------------------------------------


def render_run(run: Run) -> str:
    """One run's tensors: ``(B, N, D)``, ``(B, N, D) x3``, ``(B, N, D), (B, N)``."""
    return render_items([meta.shape_text() for meta in run.outputs])


def render_items(texts: Sequence[str]) -> str:
    """The shape texts of one run's tensors, equal ones in a row counted: ``(B, N, D) x3``."""
    items: list[list] = []
    for text in texts:
        if items and items[-1][0] == text:
            items[-1][1] += 1
        else:
            items.append([text, 1])
    parts = [text if count == 1 else f"{text} x{count}" for text, count in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        parts.append("...")
    return ", ".join(parts)


def render_runs(runs: Sequence[Run]) -> str:
    """A line's shape comment text: its distinct runs in order, joined by `` | ``."""
    return join_alternatives([render_run(run) for run in runs if run.outputs])


def join_alternatives(texts: Sequence[str]) -> str:
    """Distinct run texts in order, joined by `` | `` (the first few, then ``...``)."""
    distinct = list(dict.fromkeys(texts))
    if len(distinct) > MAX_ALTERNATIVES:
        distinct = [*distinct[:MAX_ALTERNATIVES], "..."]
    return " | ".join(distinct)
