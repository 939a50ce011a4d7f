"""The failing op as its explainers read it: operands named as written, their origins, the call's
arguments, a replay of the call on meta tensors, and where the module that ran it was built."""

from __future__ import annotations

import ast
import re

from shapetrace.capture.records import ModuleCall, OpRecord, TensorMeta
from shapetrace.diagnose.callsite import CallSite, module_call_site
from shapetrace.diagnose.checking import Fix, Replay, passes
from shapetrace.diagnose.construction import Construction, module_construction
from shapetrace.diagnose.diagnostic import ERROR, Diagnostic, Operand
from shapetrace.diagnose.evidence import CallArguments, Evidence, ModuleAttribute
from shapetrace.diagnose.ops import CATS, SIGNATURES, base_name
from shapetrace.diagnose.provenance import Dataflow

SIMPLE_NAME = re.compile(r"^[A-Za-z_][\w.]*$")
# torch's message only confirms a kind decided from the records
DEVICE_WORDS = re.compile(r"device", re.I)
DTYPE_WORDS = re.compile(
    r"dtype|scalar type|result type|type \(|\b(Long|Int|Float|Double|Half|BFloat16|Bool)\b"
)
SHAPE_WORDS = re.compile(r"must match|broadcast|expanded size|non-singleton|doesn't match|shape", re.I)


def q(text: str) -> str:
    """``text`` quoted as code in a sentence."""
    return f"`{text}`"


class FailingOp:
    """The failing op with everything its explainers read."""

    def __init__(self, op: OpRecord, flow: Dataflow, evidence: Evidence | None, message: str) -> None:
        self.op = op
        self.flow = flow
        self.name = base_name(op.qualname)
        self.inputs = op.inputs
        self.call: CallArguments | None = evidence.call if evidence is not None else None
        if self.call is not None and len(self.call.contiguous) != len(op.inputs):
            self.call = None  # not this op's arguments
        self.message = message
        site = flow.site(op)
        self.site: CallSite | None = site if site is not None and site.is_call_of(op.op) else None
        self.nodes = operand_nodes(op, self.site, self.call)
        self.texts = operand_texts(op, self.site, self.call, flow)
        self.roles = operand_roles(op, self.texts)
        self.operands = tuple(
            Operand(role, meta, flow.origin(meta, op.index)) for role, meta in zip(self.roles, op.inputs)
        )
        self.module = flow.module_text(op.module_index)

    def q(self, i: int) -> str:
        """Operand ``i``'s name, quoted for a sentence."""
        return f"`{self.roles[i]}`"

    @property
    def what(self) -> str:
        """The op as the user wrote it: `h @ image_toks`, or `linear` when a module ran it."""
        return f"`{self.site.text()}`" if self.site is not None else f"`{self.op.op}`"

    def simple_name(self, indices: list[int]) -> str | None:
        """A plain name (``att``, ``self.x``) among the given operands, for a fix to refer to."""
        for i in indices:
            text = self.texts[i]
            if text and SIMPLE_NAME.match(text):
                return text
        return None

    def replay(self) -> Replay | None:
        """The failing call, rebuilt on meta tensors (``None`` when an argument cannot be)."""
        return Replay.of(self.flow.func(self.op), self.call, self.inputs)

    def attribute(self, i: int) -> ModuleAttribute | None:
        """The module parameter/buffer/attribute operand ``i`` is, if it is one."""
        return self.flow.attribute(self.inputs[i].tensor_id, self.op.index) if i < len(self.inputs) else None

    def owner(self, weight_index: int | None = None) -> tuple[str, str]:
        """The layer that ran the op, as `norm` (LayerNorm), and its class name (``""`` when
        the op was called directly: then the op as written)."""
        weight = self.attribute(weight_index) if weight_index is not None else None
        call = self.module_call
        if weight is not None and weight.module:
            return f"`{weight.module}` ({weight.module_type})", weight.module_type
        if call is not None and call.path and self.site is None:
            return f"`{call.path}` ({call.type})", call.type
        return self.what, ""

    @property
    def module_call(self) -> ModuleCall | None:
        index = self.op.module_index
        return self.flow.trace.modules[index] if index is not None else None

    def module_site(self) -> CallSite | None:
        """The user's call of the torch module that ran this op (``self.norm(h)``), when the op
        ran directly inside it and its line called it."""
        call = self.module_call
        if call is None or self.site is not None:
            return None
        site = module_call_site(self.flow.trace, call.index)
        return site if site is not None and isinstance(site.node, ast.Call) else None

    def construction(self) -> Construction | None:
        """Where the module that ran this op was built (``self.fc = nn.Linear(...)``)."""
        call = self.module_call
        return module_construction(self.flow, call.path) if call is not None else None

    def diagnostic(self, kind: str, message: str, fix: Fix | str | None = None, details: list[str] | None = None,
                   subjects: tuple = ()) -> Diagnostic:  # fmt: skip
        op = self.op
        if isinstance(fix, str):
            fix = Fix(fix)
        return Diagnostic(
            kind=kind, severity=ERROR, message=message, file=op.file, line=op.line, op_index=op.index,
            code=op.code, op=op.op, module=self.module, fix=fix.text if fix else None,
            fix_checked=passes(fix.check) if fix else False, edits=fix.edits if fix else (),
            details=tuple(details or ()), operands=self.operands, subjects=subjects,
        )  # fmt: skip


def operand_nodes(
    op: OpRecord, site: CallSite | None, call: CallArguments | None = None
) -> list[ast.AST | None]:
    """Each operand's expression node in the call site, where they can be told apart."""
    n = len(op.inputs)
    nodes = site.operand_nodes(n, op.qualname.startswith("Tensor."), call) if site is not None else None
    return list(nodes) if nodes else [None] * n


def operand_texts(op: OpRecord, site: CallSite | None, call: CallArguments | None = None,
                  flow: Dataflow | None = None) -> list[str | None]:  # fmt: skip
    """Each operand's source expression, where the call site tells them apart; for an op a
    module ran (``site`` is ``None``), the module call's argument it came in as."""
    texts = [site.text(node) if node is not None and site else None for node in operand_nodes(op, site, call)]
    if site is None and flow is not None and op.module_index is not None:
        module_call = flow.trace.modules[op.module_index]
        texts = [t or flow.argument_text(module_call, m.tensor_id) for t, m in zip(texts, op.inputs)]
    return texts


def operand_roles(op: OpRecord, texts: list[str | None]) -> list[str]:
    """Names for an op's operands: their source text, else the signature's names."""
    name = base_name(op.qualname)
    signature = SIGNATURES.get(name)
    method = op.qualname.startswith("Tensor.")
    roles = []
    for i, text in enumerate(texts):
        if text and len(text) <= 40:
            roles.append(text)
        elif name in CATS or name == "stack":
            roles.append(f"tensors[{i}]")
        elif signature and i < len(signature):
            roles.append(signature[i])
        elif len(texts) == 2:
            roles.append(("self", "other")[i] if method else ("input", "other")[i])
        else:
            roles.append(f"operand {i}")
    return roles


def atom(text: str) -> str:
    """``text`` parenthesised unless it is a name, call, attribute or subscript (so that
    ``text[...]`` and ``text.f()`` mean what they say)."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return f"({text})"
    return (
        text
        if isinstance(node, (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant))
        else f"({text})"
    )


def labelled(label: str, size: int) -> str:
    """``C = 32`` for a named dim, ``32`` for one known only by its size."""
    return f"{label} = {size}" if label != str(size) else str(size)


def dim_labels(meta: TensorMeta) -> list[str]:
    """Each dim's label: its name from the symbolic shape (``B``, ``H//2``) when known, else its size."""
    if meta.named_expr:
        parts = split_dims(meta.named_expr)
        if len(parts) == len(meta.shape):
            return parts
    return [str(size) for size in meta.shape]


def split_dims(expr: str) -> list[str]:
    """``(B, (H//32)*(W//32) + 1, D)`` -> ``['B', '(H//32)*(W//32) + 1', 'D']``."""
    inner = expr.strip()
    if inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1]
    parts, depth, current = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += ch in "([{"
        depth -= ch in ")]}"
        current += ch
    if current.strip():
        parts.append(current.strip())
    return parts
