"""How the model was built, seen from a run that raised nothing.

- ``unregistered-module``: modules kept in a plain ``list``/``dict`` attribute: not in
  ``parameters()`` (the optimizer never updates them), not moved by ``.to()``, not saved.
- ``unused-parameter``: trainable parameters of the modules that ran that no op of the forward
  used: they get no gradient. When a sibling of the same class ran more often (``norm1`` called
  twice, ``norm2`` never), the call that probably meant the unused one is named.
"""

from __future__ import annotations

import ast
import linecache
import re
from collections import defaultdict
from typing import TYPE_CHECKING

from shapetrace.capture.records import ModuleCall
from shapetrace.capture.source import short_location
from shapetrace.diagnose.callsite import assignment_of, module_call_site
from shapetrace.diagnose.checking import Fix
from shapetrace.diagnose.diagnostic import WARNING, Diagnostic
from shapetrace.diagnose.provenance import Dataflow

if TYPE_CHECKING:
    from shapetrace.trace import Trace


def model_lints(trace: Trace, flow: Dataflow) -> list[Diagnostic]:
    return _unregistered_modules(flow) + _unused_parameters(trace, flow)


def _unregistered_modules(flow: Dataflow) -> list[Diagnostic]:
    found = []
    for held in flow.evidence.containers:
        assignment = assignment_of(held.owner, held.name)
        if assignment is None:
            continue
        wrapper = "nn.ModuleDict" if held.container == "dict" else "nn.ModuleList"
        where = (
            f"the model ({held.module_type})" if not held.module else f"{held.module} ({held.module_type})"
        )
        message = (
            f"`self.{held.name}` of {where} is a plain {held.container} of {held.count} module"
            f"{'s' if held.count != 1 else ''}: a plain {held.container} does not register them, so their "
            f"{held.parameters:,} parameters are missing from `model.parameters()` (an optimizer never updates "
            f"them), `model.to(device)` does not move them and `state_dict()` does not save them."
        )
        value = assignment.value
        new = f"{wrapper}({assignment.site.text(value)})"
        fix = Fix(f"`{new}`", assignment.site.edits({value: new}))
        found.append(Diagnostic(
            "unregistered-module", WARNING, message, assignment.file, assignment.line, None,
            _line(assignment.file, assignment.line), "", None, fix.text, held.registers, fix.edits,
            subjects=(("container", held.module, held.name),),
        ))  # fmt: skip
    return found


def _line(file: str, line: int) -> str:
    return linecache.getline(file, line).strip()


def _unused_parameters(trace: Trace, flow: Dataflow) -> list[Diagnostic]:
    """Trainable parameters under each module call that began at the top and finished, which no
    op used (only when the traced block raised nothing: a failed forward stops early)."""
    if trace.error is not None:
        return []
    roots = [call for call in trace.modules if call.parent is None and not call.failed]
    if not roots:
        return []
    prefixes = {call.path for call in roots}
    used = {meta.tensor_id for op in flow.ops for meta in op.inputs}
    unused: dict[str, list[str]] = defaultdict(list)
    for tensor_id, attribute in flow.attributes.items():
        size = flow.evidence.parameter_sizes.get(tensor_id)
        if attribute.kind != "parameter" or size is None or not size[1] or tensor_id in used:
            continue
        if any(p == "" or attribute.module == p or attribute.module.startswith(p + ".") for p in prefixes):
            unused[attribute.module].append(attribute.name)
    groups: dict[tuple, list[str]] = defaultdict(list)
    for module, names in unused.items():
        groups[(re.sub(r"\.\d+(?=\.|$)", ".*", module), tuple(sorted(names)))].append(module)
    return [
        d for d in (_unused(trace, flow, modules, list(names)) for (_, names), modules in groups.items()) if d
    ]


def _unused(trace: Trace, flow: Dataflow, modules: list[str], names: list[str]) -> Diagnostic | None:
    module = modules[0]
    parent_path, _, attr = module.rpartition(".")
    parent_cls = flow.evidence.module_classes.get(parent_path)
    module_cls = flow.evidence.module_classes.get(module)
    own = _own_parameter(flow, module, names)
    if own is not None:  # a parameter of a module that ran: `self.w = nn.Parameter(...)` never read
        owner_cls, name = own
        assignment = assignment_of(owner_cls, name)
        where = f"{module} ({owner_cls.__name__})" if module else f"the model ({owner_cls.__name__})"
        message = (
            f"`self.{name}` of {where} is a trainable parameter that no op of this run's forward used: it gets "
            f"no gradient and never trains."
        )
        fix = Fix(f"use `self.{name}` in `{owner_cls.__name__}.forward`, or delete it")
    else:
        if parent_cls is None or module_cls is None or not attr.isidentifier():
            return None
        assignment = assignment_of(parent_cls, attr)
        calls = trace.module_call_counts.get(module, 0)
        total = sum(flow.evidence.parameter_sizes.get(i, (0, False))[0]
                    for i, a in flow.attributes.items() if a.module == module and a.kind == "parameter")  # fmt: skip
        ran = "was never called in this run's forward" if calls == 0 else "ran without using them"
        message = (
            f"`self.{attr}` ({module_cls.__name__}) of {parent_cls.__name__} {ran}: its {total:,} parameters "
            f"({', '.join(names)}) get no gradient and never train."
        )
        message, fix = _sibling_fix(trace, flow, module, module_cls, calls, message)
    if assignment is None:
        return None
    count = len(modules)
    return Diagnostic(
        "unused-parameter", WARNING, message, assignment.file, assignment.line, None,
        _line(assignment.file, assignment.line), "", None, fix.text if fix else None, False, fix.edits if fix else (),
        count=count, subjects=(("unused", module),),
    )  # fmt: skip


def _own_parameter(flow: Dataflow, module: str, names: list[str]) -> tuple[type, str] | None:
    """The module's own class and parameter name, when the module ran and holds the parameter
    itself (not a torch layer that was never called)."""
    calls = flow.trace.module_call_counts.get(module, 0)
    cls = flow.evidence.module_classes.get(module)
    if calls == 0 or cls is None or cls.__module__.startswith("torch.") or len(names) != 1:
        return None
    return cls, names[0]


def _sibling_fix(trace: Trace, flow: Dataflow, module: str, module_cls: type, calls: int,
                 message: str) -> tuple[str, Fix]:  # fmt: skip
    """The message and fix for a module never called: when a sibling of the same class ran more
    often than the parent (``norm1`` twice, ``norm2`` never), its last call in each parent call
    probably meant this module."""
    fallback = Fix(f"call `self.{module.rpartition('.')[2]}` where it was meant in the forward, or delete it")
    parent_path, _, attr = module.rpartition(".")
    if calls != 0:
        return message, fallback
    parent_calls = [c for c in trace.modules if c.path == parent_path]
    siblings = defaultdict(list)
    for call in trace.modules:
        sibling_parent = call.path.rpartition(".")[0]
        if (
            sibling_parent == parent_path and call.path != module and call.parent is not None
            and flow.evidence.module_classes.get(call.path) is module_cls and _same_sizes(flow, call.path, module)
        ):  # fmt: skip
            siblings[call.path].append(call)
    for path, sibling_calls in siblings.items():
        if not parent_calls or len(sibling_calls) <= len(parent_calls):
            continue
        last = _last_call_in_first_parent(trace, sibling_calls, parent_calls[0])
        site = module_call_site(trace, last.index) if last is not None else None
        if site is None or not isinstance(site.node, ast.Call):
            continue
        callee = site.node.func
        new = f"{site.text(callee.value)}.{attr}" if isinstance(callee, ast.Attribute) else None
        if new is None:
            continue
        name = path.rpartition(".")[2]
        where = short_location(last.file, last.line)
        message += (
            f" {parent_calls[0].type}.forward calls `{name}` {len(sibling_calls) // len(parent_calls)} times; the "
            f"call at {where} probably meant `{attr}`."
        )
        text = site.rewritten({callee: new})
        return message, Fix(f"`{text}` at {where}", site.edits({callee: new}))
    return message, fallback


def _same_sizes(flow: Dataflow, a: str, b: str) -> bool:
    def sizes(path: str) -> dict[str, int]:
        return {attr.name: flow.evidence.parameter_sizes.get(i, (0, False))[0]
                for i, attr in flow.attributes.items() if attr.module == path and attr.kind == "parameter"}  # fmt: skip

    return sizes(a) == sizes(b)


def _last_call_in_first_parent(
    trace: Trace, calls: list[ModuleCall], parent: ModuleCall
) -> ModuleCall | None:
    inside = [c for c in calls if parent.first_op <= c.first_op and c.end_op <= parent.end_op]
    return inside[-1] if inside else None
