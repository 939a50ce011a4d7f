"""Parameter counts per module path, taken when a trace starts or ends: records hold no modules."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn
from torch.nn.parameter import is_lazy

from shapetrace._private.torch_api import child_modules, own_parameters
from shapetrace.capture.records import ParameterCount, Summary


def parameter_counts(model: nn.Module, seen: set[int] | None = None) -> dict[str, ParameterCount]:
    """``path -> ParameterCount`` for ``model`` and its submodules, named as ``named_modules()``
    names them (in its order). A parameter in ``seen`` (ids) is not counted again; counted ones
    are added to it. One walk over the module tree: this runs at every trace start."""
    seen = set() if seen is None else seen
    counts: dict[str, ParameterCount | None] = {}
    visited: set[int] = set()

    def visit(module: nn.Module, path: str) -> tuple[int, int]:
        if id(module) in visited:  # reachable twice: named_modules() names it once
            return 0, 0
        visited.add(id(module))
        counts[path] = None  # keeps named_modules() order
        own = own_trainable = 0
        for parameter in own_parameters(module):
            if id(parameter) not in seen:
                seen.add(id(parameter))
                size = 0 if is_lazy(parameter) else parameter.numel()  # a lazy module's, until its first call
                own += size
                own_trainable += size if parameter.requires_grad else 0
        total, total_trainable = own, own_trainable
        for name, child in child_modules(module):
            sub, sub_trainable = visit(child, f"{path}.{name}" if path else name)
            total += sub
            total_trainable += sub_trainable
        counts[path] = ParameterCount(type(module).__name__, own, own_trainable, total, total_trainable)
        return total, total_trainable

    visit(model, "")
    return counts  # type: ignore[return-value]  # every placeholder is filled


def summarize(model: nn.Module) -> Summary:
    """The summary of the model given to ``trace``; while a lazy module's parameters are
    uninitialised, the total is unknown (``extras["uninitialised"]`` counts them)."""
    counts = parameter_counts(model)
    root = counts[""]
    lazy = sum(1 for parameter in model.parameters() if is_lazy(parameter))
    if lazy:
        return Summary(type(model).__name__, None, extras={"uninitialised": lazy}, modules=counts)
    return Summary(type(model).__name__, root.total, trainable=root.total_trainable, modules=counts)


def summarize_roots(roots: Sequence[nn.Module]) -> Summary:
    """The summary of a trace without a model, from the root modules it saw: those holding
    parameters are the model (for a path two of them share, the first's counts are kept); when
    none holds any, the model is unknown."""
    seen: set[int] = set()
    counted = [(root, counts) for root in roots if (counts := parameter_counts(root, seen))[""].total]
    if not counted:
        return Summary()
    modules: dict[str, ParameterCount] = {}
    for _, counts in counted:
        for path, count in counts.items():
            modules.setdefault(path, count)
    return Summary(
        ", ".join(dict.fromkeys(type(root).__name__ for root, _ in counted)),
        sum(counts[""].total for _, counts in counted),
        trainable=sum(counts[""].total_trainable for _, counts in counted),
        modules=modules,
    )
