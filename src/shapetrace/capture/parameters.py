"""A model's modules in one walk (:class:`ModuleTree`), and parameter counts per module path,
taken when a trace ends: records hold no modules."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn
from torch.nn.parameter import is_lazy

from shapetrace._private.torch_api import named_modules_walk, own_parameters
from shapetrace.capture.records import ParameterCount, Summary


@dataclass
class ModuleTree:
    """Every module of ``root`` once, in ``named_modules()`` order, with its path (a module
    reachable twice keeps its first name). One walk serves a whole trace: naming module calls,
    installing contracts, counting parameters and collecting the debugger's evidence."""

    root: nn.Module
    modules: list[tuple[nn.Module, str]]
    paths: dict[int, str]  # id(module) -> path

    @classmethod
    def of(cls, root: nn.Module) -> ModuleTree:
        return cls(root, *named_modules_walk(root))


class TracedModels:
    """The model a trace was given, or the root modules it saw: what parameter counts, the
    debugger's evidence and the symbolic pass read when the trace is first read. Held until
    :meth:`release` (with ``hold=False``, only by weak reference from the start)."""

    def __init__(self, trees: Sequence[ModuleTree], of_model: bool, hold: bool = True) -> None:
        self.of_model = of_model
        self._refs = tuple(weakref.ref(tree.root) for tree in trees)
        self._held = tuple(tree.root for tree in trees) if hold else ()

    def trees(self) -> list[ModuleTree] | None:
        """A fresh walk of each root; ``None`` when one of them has been freed."""
        roots = [ref() for ref in self._refs]
        if any(root is None for root in roots):
            return None
        return [ModuleTree.of(root) for root in roots if root is not None]

    @property
    def holding(self) -> bool:
        """Whether the modules are still held (not only weakly referenced)."""
        return bool(self._held)

    def release(self) -> None:
        """Keep only weak references from now on."""
        self._held = ()


def traced_modules(trees: Sequence[ModuleTree]) -> list[tuple[nn.Module, str]]:
    """Every module of ``trees`` once, with its path in the first tree that has it."""
    seen: set[int] = set()
    found = []
    for tree in trees:
        for module, path in tree.modules:
            if id(module) not in seen:
                seen.add(id(module))
                found.append((module, path))
    return found


def parameter_counts(tree: ModuleTree, seen: set[int] | None = None) -> dict[str, ParameterCount]:
    """``path -> ParameterCount`` for every module of ``tree``, in its order. A parameter in ``seen``
    (ids) is not counted again; counted ones are added to it. A lazy module's parameters count 0
    until its first call initialises them."""
    seen = set() if seen is None else seen
    own: dict[str, tuple[int, int]] = {}
    for module, path in tree.modules:
        size = trainable = 0
        for parameter in own_parameters(module):
            if id(parameter) not in seen:
                seen.add(id(parameter))
                n = 0 if is_lazy(parameter) else parameter.numel()
                size += n
                trainable += n if parameter.requires_grad else 0
        own[path] = (size, trainable)
    totals = dict(own)
    for _, path in reversed(tree.modules):  # children come after their parent: add each to its parent
        if path:
            parent = path.rpartition(".")[0]
            if parent in totals:
                total, total_trainable = totals[parent]
                totals[parent] = (total + totals[path][0], total_trainable + totals[path][1])
    return {
        path: ParameterCount(type(module).__name__, *own[path], *totals[path]) for module, path in tree.modules
    }


def uninitialised(tree: ModuleTree) -> int:
    """How many parameters of ``tree`` are a lazy module's, not yet initialised."""
    return sum(1 for module, _ in tree.modules for p in own_parameters(module) if is_lazy(p))


def summarize(trees: Sequence[ModuleTree], of_model: bool) -> Summary:
    """The summary of a trace: of the model given to ``trace`` (``of_model``, one tree), or,
    without one, of the root modules it saw: those holding parameters are the model (for a path two
    of them share, the first's counts are kept); when none holds any, the model is unknown."""
    seen: set[int] = set()
    counted = [(tree, counts) for tree in trees if (counts := parameter_counts(tree, seen))[""].total or of_model]
    if not counted:
        return Summary()
    modules: dict[str, ParameterCount] = {}
    for _, counts in counted:
        for path, count in counts.items():
            modules.setdefault(path, count)
    lazy = sum(uninitialised(tree) for tree, _ in counted)
    return Summary(
        ", ".join(dict.fromkeys(type(tree.root).__name__ for tree, _ in counted)),
        None if lazy else sum(counts[""].total for _, counts in counted),
        trainable=None if lazy else sum(counts[""].total_trainable for _, counts in counted),
        modules=modules,
        uninitialised=lazy,
    )
