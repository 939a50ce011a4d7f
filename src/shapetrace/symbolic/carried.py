"""Ops whose outputs carry their inputs' sizes, answered in the replay without torch's reasoning.

An activation, a dropout, a softmax, elementwise math (``x ** 2``, ``rsqrt``), a reduction along
dims given, a normalisation, ``x + y`` on tensors of the same sizes (or
with one of them ones where the other is not, ``(B, C, 1, 1)``), ``linear`` on a concrete last
dim, a convolution padded to keep its size, ``cat`` along a concrete dim, ``interpolate`` to
sizes given or by a scale factor, a GRU or LSTM, a matrix product on the same batch dims, an embedding, views
that move or cut sizes (``transpose``, ``split``, ``x[:, None]``, ``x[..., :16]``, ``flatten``,
``expand``, a ``reshape`` ATen's ``view`` can do), ``roll``, what masks are built with (comparisons,
``&``/``|``/``~``, integer arithmetic, ``where``, ``masked_fill``, ``.to(dtype)``, integer-tensor
indexing, ``zeros_like``, ``new_ones``, on operands whose sizes broadcast each other as written),
and attention where torch picks its fused CPU kernel; and, with the checks torch makes that fix a
size made the same way (docs/symbolic.md), 1-d pools and convolutions and ``linear`` on symbolic
channels: torch's fake run of each asks
its ``ShapeEnv`` about every symbolic size (broadcasting, contiguity, the decompositions
symbolic sizes send them through) and gets the answer the op's definition already gives: the
output has the input's sizes, or the input's with one concrete dim changed, or the sizes the
caller gave. On a DenseNet, ``batch_norm`` and ``relu`` were 70% of the pass (20-40 ms each on
nested floor divisions). Here the output is made directly: an alias of the input, a new
contiguous tensor, or a view with the input's sizes and strides moved or cut. No size is
computed beyond multiplying sizes that exist: each is carried.

Only where torch's run could not have told more. An op is answered here when:
- its sizes cannot change an expression: the dims it checks against a parameter (a norm's
  channels, ``linear``'s last dim, ``cat``'s dim) are concrete, and the other tensors' sizes are
  the same expressions or literal ones (``Eq(H, H')`` would be a guard, maybe a replacement);
- its output's dtype, device and strides are what torch's would be (floating dtypes alike;
  contiguous inputs, or a layout torch keeps: :data:`KEEP_LAYOUT`, channels-last norms; no
  ``out=``), and no value flows (a fake tensor holding a constant runs in torch);
- under autograd, its output can be what torch's would be: not a leaf (an in-place op on it then
  works as on torch's output);
- an order torch decides between sizes or strides written differently (a view's runs of dims,
  ``empty_like``'s layout) is read from their traced values only where those differ: torch
  decides it the same way, statically or by a guard that fixes no dim; equal there, it is torch's.
One kind of op tells more than torch's run: a view to sizes that multiply to the input's only at
the traced values keeps the sizes the code gave, after torch's own check of the count (torch's
decomposition writes them as divisions of the input's: :func:`_view`).
Everything else runs in torch as before. tests/symbolic/test_symbolic_carried.py checks that the
expressions, specialisations and statuses equal a replay without this, on the examples and on
real layouts (docs/symbolic.md, "Ops that cannot change a size").
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sympy
import torch

from shapetrace._private import torch_symbolic as ts

F = torch.nn.functional
_T = torch.Tensor

Maker = Callable[..., Any]

_MATH = "neg abs exp exp2 expm1 log log2 log1p sqrt rsqrt square reciprocal sin cos erf sign"
# Output: the input's sizes, dtype, device and (for a contiguous input) strides.
ELEMENTWISE = frozenset(
    getattr(owner, name)
    for owner, names in (
        (F, "relu relu6 gelu silu mish sigmoid tanh hardswish hardsigmoid hardtanh leaky_relu elu selu celu "
            "softplus softsign tanhshrink logsigmoid dropout dropout1d dropout2d dropout3d alpha_dropout "
            "softmax log_softmax"),
        (torch, "relu sigmoid tanh softmax log_softmax dropout " + _MATH),
        (_T, "relu sigmoid tanh softmax log_softmax __neg__ __abs__ " + _MATH),
    )
    for name in names.split()
    if hasattr(owner, name)
)


def _inplace_positions(functions: frozenset) -> dict[Callable, int]:
    """Where each function takes ``inplace`` positionally (``F.dropout(x, p, training, inplace)``)."""
    positions = {}
    for func in functions:
        try:
            parameters = list(inspect.signature(func).parameters)
        except (TypeError, ValueError):  # a builtin without a signature has no inplace argument
            continue
        if "inplace" in parameters:
            positions[func] = parameters.index("inplace")
    return positions


INPLACE_AT = _inplace_positions(ELEMENTWISE)
# Of those, the ones whose output keeps a transposed or permuted input's layout (torch's
# ``empty_like``); a softmax's output is contiguous whatever its input.
KEEP_LAYOUT = frozenset(f for f in ELEMENTWISE if getattr(f, "__name__", "") not in ("softmax", "log_softmax"))
# Of those, the ones whose output is contiguous for an input cut from a contiguous tensor (a
# chunk, a split, ``x[..., :n]``: :func:`_sliced`), as for a contiguous input; a dropout in eval
# mode returns its input as it is.
FROM_SLICES = frozenset(f for f in ELEMENTWISE if "dropout" not in getattr(f, "__name__", ""))
# Output: the first operand's sizes, when the other is a number or has the same sizes.
BINARY = frozenset(
    getattr(owner, name)
    for owner, names in (
        (torch, "add sub mul div"),
        (_T, "add sub mul div __add__ __radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__"),
    )
    for name in names.split()
)
# A power with a number exponent (``x ** 2``, ``x.pow(0.5)``): elementwise.
POWERS = frozenset({torch.pow, _T.pow, _T.__pow__})
# Reductions along dims given (``x.mean(-1, keepdim=True)``): the input's sizes without those
# dims, or with them 1; a new contiguous tensor.
REDUCTIONS = frozenset({torch.mean, _T.mean, torch.sum, _T.sum, torch.amax, _T.amax, torch.amin, _T.amin})
# Views of a contiguous tensor to sizes given (``x.view(B, T, h, d)``, ``reshape(B, -1, C)``):
# a view with the new sizes' contiguous strides.
VIEWS = frozenset({_T.view, _T.reshape, torch.reshape})
# The same, in place: the output is the first operand itself.
BINARY_IN_PLACE = frozenset(
    getattr(_T, name) for name in ["add_", "sub_", "mul_", "div_", "__iadd__", "__isub__", "__imul__", "__itruediv__"]
)


def _channels(x: torch.Tensor, args: tuple, kwargs: dict) -> Sequence[int]:
    return (1,)


def _trailing(x: torch.Tensor, args: tuple, kwargs: dict) -> Sequence[int]:
    normalized = _argument(args, kwargs, 1, "normalized_shape")
    count = 1 if isinstance(normalized, int) else len(normalized)
    return range(x.dim() - count, x.dim())


# Normalisations: the input's sizes; the dims each checks against its weights must be concrete.
NORMS: dict[Callable, Callable[[torch.Tensor, tuple, dict], Sequence[int]]] = {
    getattr(F, name): checked
    for name, checked in (
        ("batch_norm", _channels), ("instance_norm", _channels), ("group_norm", _channels),
        ("layer_norm", _trailing), ("rms_norm", _trailing),
    )
    if hasattr(F, name)
}  # fmt: skip
CATS = frozenset({torch.cat, torch.concat, torch.concatenate})
# Convolutions: the output is the input's sizes with the channels the weight's when the conv keeps
# its size (stride 1, padding "same": 2 * padding == dilation * (kernel - 1)), else torch's formula.
CONVS = {getattr(F, f"conv{n}d"): n for n in (1, 2, 3)}
CONV_TRANSPOSES = {getattr(F, f"conv_transpose{n}d"): n for n in (1, 2, 3)}
# Pools whose output sizes torch's meta function computes (:func:`_pool`), and their arguments.
POOLS = frozenset({F.max_pool2d, F.avg_pool2d})
MAX_POOL_ARGUMENTS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
AVG_POOL_ARGUMENTS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
# Output sizes the caller gives: the input's leading dims, then ``output_size`` (None: the input's).
ADAPTIVE_POOLS = {getattr(F, f"adaptive_avg_pool{n}d"): n for n in (1, 2, 3)}
# torch's recurrent kernels (nn.RNN, nn.GRU, nn.LSTM call them): the output is the input's sizes
# with the last dim the hidden state's (times 2 when bidirectional); the final states are the
# initial states' sizes.
RECURRENT = frozenset({torch.rnn_tanh, torch.rnn_relu, torch.gru, torch.lstm})
# Matrix products of operands with the same batch dims: the batch dims, then the rows of the
# first and the columns of the second, in a new contiguous tensor.
MATMULS = frozenset({torch.matmul, torch.bmm, _T.matmul, _T.__matmul__, _T.bmm})


# Views that move a tensor's dims (``x.transpose(1, 2)``, ``x.permute(0, 2, 1)``, ``x.unsqueeze(1)``)
# or cut it along a dim of concrete size (``qkv.split(D, dim=-1)``, ``x.chunk(2, -1)``): views with
# its sizes and strides, as written, moved or cut.
MOVES = frozenset({torch.transpose, _T.transpose, torch.swapaxes, _T.swapaxes, torch.permute, _T.permute,
                   torch.unsqueeze, _T.unsqueeze, torch.t, _T.t})  # fmt: skip
CUTS = frozenset({torch.split, _T.split, torch.chunk, _T.chunk})
# ``x.contiguous()``: ``x`` itself when it is contiguous, else a new contiguous tensor of its sizes.
CONTIGUOUS = frozenset({_T.contiguous})
# ``x[:, None]``, ``x[..., 0]``: indexing with ``:``, ``...``, ``None`` and numbers (on dims of
# concrete size): a view.
INDEXING = frozenset({_T.__getitem__})
# ``x.flatten(1)`` of a contiguous tensor: a view, the flattened dims' sizes multiplied.
FLATTENS = frozenset({torch.flatten, _T.flatten})
# ``x.expand(B, -1, T)``: a view with the sizes given where ``x``'s are 1 (stride 0).
EXPANDS = frozenset({_T.expand})
# ``bias + x @ weight`` on a 2-d ``x`` (GPT-2's ``Conv1D``).
ADDMMS = frozenset({torch.addmm, _T.addmm})
# ``torch._grouped_mm``: an MoE layer's experts (``F.grouped_mm`` calls it).
GROUPED_MMS = frozenset({torch._grouped_mm})
# ``F.scaled_dot_product_attention`` on CPU: torch's fused kernel makes ``torch.empty_like(query)``.
ATTENTION = frozenset({F.scaled_dot_product_attention})
# ``F.multi_head_attention_forward`` (``nn.MultiheadAttention``, ``nn.Transformer``): the query's
# sequence and batch dims, the output projection's features; the weights, when asked for.
MULTI_HEAD_ATTENTION = frozenset({F.multi_head_attention_forward})
# ``torch.triu(torch.full((T, T), float("-inf")), diagonal=1)`` (a causal mask): the input's sizes.
TRIANGLES = frozenset({torch.triu, torch.tril, _T.triu, _T.tril})
# ``torch.roll(x, shifts=(-3, -3), dims=(1, 2))`` (Swin's cyclic shift): the input's sizes.
ROLLS = frozenset({torch.roll, _T.roll})
# ``mask.all()``, ``x.any()`` of every element: a 0-d bool (read by ``bool()`` as the traced value).
ALL_ANY = frozenset({torch.all, torch.any, _T.all, _T.any})
_MHA_PARAMETERS = inspect.signature(F.multi_head_attention_forward)


def _functions(*groups: tuple[Any, str]) -> frozenset:
    return frozenset(getattr(owner, name) for owner, names in groups for name in names.split() if hasattr(owner, name))


# What masks are built with, on operands whose sizes broadcast as written (``(B, 1, 1, T)`` with
# ``(1, 1, T, T)``): a new contiguous tensor of the broadcast sizes (:func:`_pointwise`).
# Comparisons make bools.
COMPARISONS = _functions((torch, "eq ne lt le gt ge"),
                         (_T, "eq ne lt le gt ge __eq__ __ne__ __lt__ __le__ __gt__ __ge__"))  # fmt: skip
# Logical ops make bools; bitwise ones (``mask & causal``, ``~mask``) keep their operands' dtype.
LOGICAL = _functions((torch, "logical_and logical_or logical_xor logical_not"),
                     (_T, "logical_and logical_or logical_xor logical_not"))  # fmt: skip
BITWISE = _functions((torch, "bitwise_and bitwise_or bitwise_xor bitwise_not"),
                     (_T, "bitwise_and bitwise_or bitwise_xor bitwise_not __and__ __or__ __xor__ __invert__"))  # fmt: skip
# Arithmetic on integers (positions, relative buckets), and on floats where operands broadcast
# each other (``timesteps[:, None] * freqs[None, :]``), which :data:`BINARY` leaves.
# A true division of integers makes floats: division is for floats only.
DIVISIONS = _functions((torch, "div"), (_T, "div __truediv__ __rtruediv__"))
ARITHMETIC = (BINARY - DIVISIONS) | _functions((torch, "minimum maximum neg abs"),
                                               (_T, "minimum maximum neg abs __neg__ __abs__"))  # fmt: skip
# ``torch.min(a, b)``, ``torch.max(a, b)``: elementwise on two tensors (on a dim: a reduction).
MIN_MAX = frozenset({torch.min, torch.max, _T.min, _T.max})
# ``torch.zeros_like(x)``, ``torch.full_like(x, 15)``: a new tensor laid out as ``x`` is, needing no grad.
LIKE_FACTORIES = {torch.zeros_like: 1, torch.ones_like: 1, torch.empty_like: 1, torch.full_like: 2}
# ``x.new_ones((), dtype=torch.bool)``: a new contiguous tensor of the sizes given, needing no grad.
NEW_FACTORIES = {_T.new_zeros: 2, _T.new_ones: 2, _T.new_empty: 2, _T.new_full: 3}
# ``torch.arange(T)``, ``torch.arange(0, 128, dtype=torch.float32)``: positions, a new 1-d tensor.
ARANGES = frozenset({torch.arange})
# ``torch.where(mask, x, y)`` and ``x.masked_fill(mask, value)`` (``torch.finfo(dtype).min``).
WHERES = frozenset({torch.where})
MASKED_FILLS = frozenset({torch.masked_fill, _T.masked_fill})
# ``x.to(dtype)``, ``x.float()``, ``x.type_as(y)``: ``x`` itself in its own dtype and device, else a
# new contiguous tensor in the other dtype.
CONVERSIONS = {_T.to: None, _T.type_as: None, _T.float: torch.float32, _T.double: torch.float64,
               _T.half: torch.float16, _T.bfloat16: torch.bfloat16, _T.bool: torch.bool, _T.long: torch.int64,
               _T.int: torch.int32}  # fmt: skip


def carried(func: Callable, args: tuple, kwargs: dict | None) -> Maker | None:
    """A callable making ``func``'s fake outputs when the op's outputs carry its inputs' sizes
    (this module's docstring), else ``None``: the op runs in torch."""
    kwargs = kwargs or {}
    if "out" in kwargs or not (args or func in ARANGES):
        return None
    for rule, falls_through in _RULES.get(func, ()):
        made = rule(func, args, kwargs)
        if made is not None or not falls_through:
            return made
    return None


Rule = Callable[[Callable, tuple, dict], Maker | None]  # a rule: func, args, kwargs -> a maker or None


def _rule_table() -> dict[Callable, tuple[tuple[Rule, bool], ...]]:
    """``func -> its rules``, tried in this order: a rule that ``falls_through`` hands an op it
    does not answer to the next one of its function (``x * y`` that ``_binary`` leaves, because
    the operands broadcast each other, is :func:`_pointwise`'s), any other rule decides."""
    table: dict[Callable, list[tuple[Rule, bool]]] = {}

    def add(functions: Iterable[Callable], rule: Rule, falls_through: bool = False) -> None:
        for func in functions:
            rules = table.setdefault(func, [])
            if not rules or rules[-1][1]:  # after a rule that decides, none is reached
                rules.append((rule, falls_through))

    def powers(func: Callable, args: tuple, kwargs: dict) -> Maker | None:
        return _elementwise(func, args, kwargs) if len(args) == 2 and type(args[1]) in (int, float) else None

    def min_max(func: Callable, args: tuple, kwargs: dict) -> Maker | None:
        two = len(args) == 2 and isinstance(args[1], torch.Tensor)  # on a dim: a reduction
        return _pointwise(args, kwargs, kinds="int float") if two else None

    add(ELEMENTWISE, _elementwise, falls_through=True)
    add(POWERS, powers)
    add(REDUCTIONS, lambda f, a, k: _reduction(a, k))
    add(VIEWS, lambda f, a, k: _view(a, k))
    add(NORMS, lambda f, a, k: _norm(NORMS[f], a, k, keeps_layout=f in (F.batch_norm, F.group_norm),
                                     contiguous_below_4d=f is F.group_norm))  # fmt: skip
    add(BINARY, lambda f, a, k: _binary(a, k, in_place=False), falls_through=True)
    add(BINARY_IN_PLACE, lambda f, a, k: _binary(a, k, in_place=True))
    add([F.linear], lambda f, a, k: _linear(a, k), falls_through=True)
    add(CATS, lambda f, a, k: _cat(a, k), falls_through=True)
    add([F.interpolate], lambda f, a, k: _interpolate(a, k))
    add(CONVS, lambda f, a, k: _conv(CONVS[f], a, k), falls_through=True)
    add(CONV_TRANSPOSES, lambda f, a, k: _conv_transpose(CONV_TRANSPOSES[f], a, k))
    add(POOLS, _pool)
    add([F.pad], lambda f, a, k: _padded(a, k))
    add(ADAPTIVE_POOLS, lambda f, a, k: _adaptive_pool(ADAPTIVE_POOLS[f], a, k))
    add(RECURRENT, lambda f, a, k: _recurrent(a, k))
    add(MATMULS, _matmul)
    add(GROUPED_MMS, lambda f, a, k: _grouped_mm(a, k))
    add(ADDMMS, lambda f, a, k: _addmm(a, k))
    add(MOVES, _moved)
    add(CUTS, _cut)
    add(CONTIGUOUS, lambda f, a, k: _contiguous_copy(a, k))
    add(INDEXING, lambda f, a, k: _indexed(a, k))
    add(FLATTENS, lambda f, a, k: _flattened(a, k))
    add(EXPANDS, lambda f, a, k: _expanded(a, k))
    add([F.embedding], lambda f, a, k: _embedding(a, k))
    add(ATTENTION, lambda f, a, k: _attention(a, k))
    add(MULTI_HEAD_ATTENTION, lambda f, a, k: _multi_head_attention(a, k))
    add(TRIANGLES, lambda f, a, k: _triangle(a, k))
    add(ROLLS, lambda f, a, k: _rolled(a, k))
    add(BINARY, lambda f, a, k: _binary_laid_out_by_first(f, a, k), falls_through=True)
    add(ALL_ANY, lambda f, a, k: _all_or_any(a, k))
    add(CONVERSIONS, _converted)
    add(COMPARISONS | LOGICAL, lambda f, a, k: _pointwise(a, k, to=torch.bool))
    add(BITWISE, lambda f, a, k: _pointwise(a, k, kinds="bool int"))
    add(ARITHMETIC, lambda f, a, k: _pointwise(a, k, kinds="int float"))  # what BINARY leaves, integers
    add(DIVISIONS, lambda f, a, k: _pointwise(a, k, kinds="float"))
    add(MIN_MAX, min_max)
    add(LIKE_FACTORIES, lambda f, a, k: _made_like(LIKE_FACTORIES[f], a, k))
    add(NEW_FACTORIES, lambda f, a, k: _made_new(NEW_FACTORIES[f], a, k))
    add(ARANGES, lambda f, a, k: _arange(a, k))
    add(WHERES, lambda f, a, k: _where(a, k))
    add(MASKED_FILLS, lambda f, a, k: _masked_fill(a, k))
    # 1-d pools with torch's guards, and convolutions that check symbolic channels (after _conv)
    add(POOLS_1D, _pool_1d)
    add(CONVS, lambda f, a, k: _conv_on_symbolic_channels(CONVS[f], a, k))
    add([F.linear], lambda f, a, k: _linear_on_symbolic_features(a, k))
    add(CATS, lambda f, a, k: _channels_last_cat(a, k))
    return {func: tuple(rules) for func, rules in table.items()}


# --- the rules ---------------------------------------------------------------------------------


def _elementwise(func: Callable, args: tuple, kwargs: dict) -> Maker | None:
    x = args[0]
    if not _plain(x, contiguous=False) or any(isinstance(value, torch.dtype) for value in (*args, *kwargs.values())):
        return None  # softmax(x, dim, dtype=...) changes the dtype
    dense = _is_contiguous(x) or (func in KEEP_LAYOUT and _permuted_contiguous(x))
    if not dense and not (func in FROM_SLICES and (_sliced(x) or _ordered_outward(x))):
        return _strided_elementwise(func, args, kwargs)
    position = INPLACE_AT.get(func)
    if kwargs.get("inplace") or (position is not None and len(args) > position and args[position]):
        return _itself(x)
    return _alias_of(x, (x,)) if dense else _new(list(x.shape), x, (x,))


def _strided_elementwise(func: Callable, args: tuple, kwargs: dict) -> Maker | None:
    """An activation or elementwise math on a tensor that is neither dense nor cut from a
    contiguous one (LLaMA's ``-x[..., d // 2:]`` of transposed queries): torch lays its output
    out densely, its dims in the order of the input's strides (:func:`_elementwise_strides`), not
    in place."""
    position = INPLACE_AT.get(func)
    if func not in FROM_SLICES or func not in KEEP_LAYOUT or kwargs.get("inplace") or (
            position is not None and len(args) > position and args[position]):  # fmt: skip
        return None
    strides = _elementwise_strides(args[0])
    return None if strides is None else _new_strided(args[0], strides, (args[0],))


def _view(args: tuple, kwargs: dict) -> Maker | None:
    """``x.view(*sizes)`` or ``reshape`` whose sizes' product is ``x``'s as written (``(B, T,
    4*16)`` to ``(B, T, 4, 16)``); a ``-1`` may stand for a number, one of ``x``'s sizes or the
    product of a run of them (``(B, T, C)`` to ``(B, -1, h, d)``: ``T``; ``view(-1, C)``:
    ``B*T``). Dividing sizes is torch's (a divisibility guard).

    Sizes whose product is ``x``'s only at the traced values, written in the same dims' symbols
    (a patchify's ``(B, C, H//p, p, W//p, p)``, Swin's windows of a padded image): the sizes as
    given, after torch's own check that the count is kept (:func:`ts.check_view_count`: a guard,
    made inside the op). Torch's view would split and merge dims by dividing and print the ``p``
    the code gave as ``H//(H//p)``, equal to it wherever the view succeeds. A ``-1`` there is the
    run of ``x``'s dims it stands for at the traced values (:func:`_run_by_values`), as torch's
    view finds it. Sizes given as numbers where ``x``'s are expressions in a dim (an ``int()`` on
    the way: MobileViT's patches) are torch's, which keeps ``x``'s expressions.

    Of a contiguous tensor, the output is a view with the contiguous strides of its sizes (torch's
    ``view`` of a contiguous tensor: 1.6 ms, this 0.3); of another layout, a view with the strides
    torch's ``view`` gives (:func:`_view_strides`: attention's ``out.reshape(B, -1, T, d)``, a
    ``permute(0, 2, 3, 1).reshape(B, H*W, C)``); where it would copy, torch's."""
    if kwargs or len(args) < 2:
        return None
    x = args[0]
    sizes = _given(args)
    if not _viewable(x) or not sizes or not all(isinstance(s, (int, torch.SymInt)) for s in sizes):
        return None
    checked = False  # whether torch's check that the count of elements is kept is made here
    contiguous = _is_contiguous(x)
    if not contiguous:
        split = _last_dim_split(x, sizes)
        if split is not None:
            return split
    written, old = [ts.size_expr(s) for s in sizes], ts.size_exprs(x.shape)
    if any(isinstance(e, int) and e < 1 and e != -1 for e in written) or written.count(-1) > 1:
        return None
    count = sympy.Mul(*old)
    if -1 in written:
        inferred = count / sympy.Mul(*(e for e in written if e != -1))
        if inferred.is_Integer and int(inferred) > 0:
            sizes[written.index(-1)] = int(inferred)
        else:  # one of x's sizes, or the product of a run of them (a flatten)
            run = next(((i, j) for i in range(len(old)) for j in range(i + 1, len(old) + 1)
                        if sympy.Mul(*old[i:j]) == inferred), None)  # fmt: skip
            by_values = run is None
            if by_values:
                run = _run_by_values(x, sizes, written.index(-1))
                if run is None:
                    return None
            product = x.shape[run[0]]
            for size in x.shape[run[0] + 1 : run[1]]:
                product = product * size
            sizes[written.index(-1)] = product
            checked = by_values
    elif sympy.Mul(*written) != count:
        if not _counts_agree(x, sizes):
            return None  # torch raises, or a size is data-dependent
        checked = True
    if checked and _symbols_of(ts.size_exprs(sizes)) != _symbols_of(old):
        return None  # a size given as a number where x's is a dim's expression: torch's view keeps x's
    strides = (
        _contiguous_strides(sizes) if contiguous else _view_strides(list(x.shape), list(x.stride()), sizes)
    )
    if strides is None:
        return None
    made = _view_of(x, sizes, strides)
    return _checked(lambda: ts.check_view_count(x, sizes), made) if checked else made


def _symbols_of(exprs: Iterable[Any]) -> set:
    """The dims' symbols the sizes are written in."""
    return set().union(*(e.free_symbols for e in exprs if isinstance(e, sympy.Basic)))


def _checked(check: Callable[[], None], make: Maker) -> Maker:
    """``make`` after ``check``, a check torch's op makes, run inside the recorded op as torch's
    is (a guard it adds is the op's)."""

    def checked_make(*args: Any, **kwargs: Any) -> Any:
        check()
        return make(*args, **kwargs)

    return checked_make


def _run_by_values(x: torch.Tensor, sizes: list, at: int) -> tuple[int, int] | None:
    """The run of ``x``'s dims that the ``-1`` at ``at`` stands for, matched as torch's ``view``
    matches dims, at the traced values: ``x``'s dims in order, in runs whose sizes multiply to
    each given size (the ``-1``'s: what the others leave), none empty. Swin's ``window_reverse``,
    ``(1, H//7, 7, W//7, 7, C)`` viewed as ``(-1, H, W, C)``: the ``-1`` is the first dim."""
    old, given = [ts.size_hint(s) for s in x.shape], [ts.size_hint(s) for s in sizes]
    if None in old or None in given or 0 in old or 0 in given:
        return None
    known = math.prod(size for i, size in enumerate(given) if i != at)
    if math.prod(old) % known:
        return None
    given[at] = math.prod(old) // known
    start, runs = 0, []
    for size in given:
        end, product = start + 1, old[start] if start < len(old) else 0
        while product < size and end < len(old):
            product, end = product * old[end], end + 1
        if product != size:
            return None
        runs.append((start, end))
        start = end
    return runs[at] if start == len(old) else None


def _counts_agree(x: torch.Tensor, sizes: list) -> bool:
    """Whether ``x.view(*sizes)`` holds its elements at the traced values."""
    hints = [ts.size_hint(s) for s in (*x.shape, *sizes)]
    return None not in hints and math.prod(hints[: x.dim()]) == math.prod(hints[x.dim() :])


class _Undecided(Exception):
    """Two sizes equal at the traced values but written differently: torch's question about them
    could be a guard that fixes one."""


def _compare(a: Any, b: Any) -> int:
    """-1, 0 or 1 as ``a`` is less than, equal to or greater than ``b``: equal as written, else by
    the values they have in this run (torch decides the relation for every value its ranges
    allow, or guards it at these values: either way, as they say). Raises :class:`_Undecided`."""
    if ts.size_expr(a) == ts.size_expr(b):
        return 0
    hint_a, hint_b = ts.size_hint(a), ts.size_hint(b)
    if hint_a is None or hint_b is None or hint_a == hint_b:
        raise _Undecided
    return -1 if hint_a < hint_b else 1


def _view_strides(old: list, old_strides: list, sizes: list) -> list | None:
    """The strides torch's ``view`` gives ``sizes`` of a tensor with ``old`` sizes and strides
    (ATen's ``computeStride``: the old dims in runs whose strides nest, each run's elements laid
    out again over new dims whose product is the run's), or ``None`` where it would copy, or a
    comparison it makes is not decided as written or by the traced values."""
    strides: list[Any] = [None] * len(sizes)
    try:
        view_d, base = len(sizes) - 1, old_strides[-1]
        tensor_numel: Any = 1
        view_numel: Any = 1
        for d in range(len(old) - 1, -1, -1):
            tensor_numel = tensor_numel * old[d]
            if d == 0 or (_compare(old[d - 1], 1) != 0 and _compare(old_strides[d - 1], tensor_numel * base) != 0):
                while view_d >= 0 and (_compare(view_numel, tensor_numel) < 0 or _compare(sizes[view_d], 1) == 0):
                    strides[view_d] = view_numel * base
                    view_numel = view_numel * sizes[view_d]
                    view_d -= 1
                if _compare(view_numel, tensor_numel) != 0:
                    return None
                if d > 0:
                    base, tensor_numel, view_numel = old_strides[d - 1], 1, 1
    except _Undecided:
        return None
    return strides if view_d == -1 else None


def _last_dim_split(x: torch.Tensor, sizes: list) -> Maker | None:
    """A view of a tensor dense in its last dim, of concrete size (a piece of ``qkv.split(D, -1)``),
    that keeps its other sizes as written and splits the last into numbers (a ``-1`` among them
    inferred): ``(B, T, 768)`` to ``(B, T, 12, 64)``. The other dims keep their strides."""
    old = ts.size_exprs(x.shape)
    lead, last = len(old) - 1, old[-1]
    if not isinstance(last, int) or ts.size_expr(x.stride(-1)) != 1 or len(sizes) <= lead:
        return None
    if [ts.size_expr(s) for s in sizes[:lead]] != list(old[:lead]):
        return None
    tail = [ts.size_expr(s) for s in sizes[lead:]]
    if not all(isinstance(t, int) and (t > 0 or t == -1) for t in tail) or tail.count(-1) > 1:
        return None
    known = math.prod(t for t in tail if t != -1)
    if -1 in tail:
        if last % known:
            return None
        tail[tail.index(-1)] = last // known
    if math.prod(tail) != last:
        return None  # torch raises
    return _view_of(x, [*x.shape[:lead], *tail], [*x.stride()[:lead], *_contiguous_strides(tail)])


def _moved(func: Callable, args: tuple, kwargs: dict) -> Maker | None:
    """``transpose``/``swapaxes``, ``permute``, ``t`` and ``unsqueeze``: a view of ``x`` with its
    sizes and strides moved (a new dim of size 1 takes the stride torch gives it). Dims out of
    range run in torch, which raises."""
    x = args[0]
    if kwargs or not _viewable(x) or x.dim() == 0:
        return None
    n, name = x.dim(), func.__name__
    sizes, strides = list(x.shape), list(x.stride())
    if name in ("transpose", "swapaxes"):
        if len(args) != 3 or not all(type(d) is int and -n <= d < n for d in args[1:]):
            return None
        order = list(range(n))
        order[args[1] % n], order[args[2] % n] = order[args[2] % n], order[args[1] % n]
    elif name == "permute":
        dims = _given(args)
        if len(dims) != n or not all(type(d) is int and -n <= d < n for d in dims):
            return None
        order = [d % n for d in dims]
        if sorted(order) != list(range(n)):
            return None
    elif name == "t":
        if len(args) != 1 or n > 2:
            return None
        order = list(reversed(range(n)))
    else:  # unsqueeze
        if len(args) != 2 or type(args[1]) is not int or not -n - 1 <= args[1] <= n:
            return None
        at = args[1] % (n + 1)
        sizes.insert(at, 1)
        strides.insert(at, 1 if at == n else strides[at] * sizes[at + 1])
        return _view_of(x, sizes, strides)
    return _view_of(x, [sizes[d] for d in order], [strides[d] for d in order])


def _cut(func: Callable, args: tuple, kwargs: dict) -> Maker | None:
    """``split`` (a size, or sizes that add up) and ``chunk`` along a dim of concrete size: views
    of ``x`` with that dim cut, each at its offset, in a tuple as torch returns them."""
    x = args[0]
    if len(args) not in (2, 3) or set(kwargs) - {"dim"} or not _viewable(x) or x.dim() == 0:
        return None
    how, dim, n = args[1], args[2] if len(args) == 3 else kwargs.get("dim", 0), x.dim()
    if type(dim) is not int or not -n <= dim < n:
        return None
    dim %= n
    total = ts.size_expr(x.shape[dim])
    if not isinstance(total, int) or total == 0:
        return None
    if func.__name__ == "chunk":
        if type(how) is not int or how < 1:
            return None
        how = -(-total // how)  # torch's chunk: pieces of the rounded-up share
    if type(how) is int and how > 0:
        pieces = [min(how, total - start) for start in range(0, total, how)]
    elif isinstance(how, (list, tuple)) and all(type(p) is int and p >= 0 for p in how) and sum(how) == total:
        pieces = list(how)
    else:
        return None  # torch raises, or a size that is not a number
    sizes, strides, offset = list(x.shape), list(x.stride()), x.storage_offset()
    views, start = [], 0
    for piece in pieces:
        views.append(_view_of(x, [*sizes[:dim], piece, *sizes[dim + 1 :]], strides, offset + start * strides[dim]))
        start += piece
    return lambda *args, **kwargs: tuple(view() for view in views)


def _indexed(args: tuple, kwargs: dict) -> Maker | None:
    """``x[index]`` where the index holds only ``:``, one ``...``, ``None`` (a new dim of size 1,
    with the stride ``unsqueeze`` gives it), numbers on dims of concrete size (the dim goes, the
    offset moves) and slices with a positive step (``x[..., :d // 2]``, ``x[:, 0::2]``: the dim
    is cut, the offset moves): a view of ``x``. A slice of a symbolic dim, or with bounds that are
    sizes (Swin's crop ``x[:, :height, :width]``), is cut as torch's fake ``slice`` cuts it
    (:func:`ts.sliced`, inside the op: its questions about the bounds may add guards). Numbers on
    symbolic dims (torch checks the bound) run in torch; tensors are :func:`_gathered`."""
    if len(args) != 2 or kwargs or not isinstance(args[0], torch.Tensor):
        return None
    x, index = args
    items = index if type(index) is tuple else (index,)
    if not all(item is None or item is Ellipsis or type(item) is int or _sizes_slice(item)
               for item in items) or items.count(Ellipsis) > 1:  # fmt: skip
        return _gathered(x, items)
    if not _viewable(x):
        return None
    used = sum(1 for item in items if item is not None and item is not Ellipsis)
    if used > x.dim():
        return None  # torch raises
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + (slice(None),) * (x.dim() - used) + items[at + 1 :]
    sizes = list(x.shape)
    dim, by_torch = 0, False
    for item in items:
        if type(item) is int:
            size = ts.size_expr(sizes[dim])
            if not isinstance(size, int) or not -size <= item < size:
                return None  # a bound torch checks (a guard), or an index torch rejects
        elif type(item) is slice and not _whole(item):
            bounds = (sizes[dim], item.start, item.stop)
            if not (isinstance(ts.size_expr(sizes[dim]), int) and _number_slice(item)):
                if any(b is not None and ts.size_hint(b) is None for b in bounds):
                    return None  # a size read from data
                by_torch = True
        dim += item is not None
    if not by_torch:
        return _view_of(x, *_index_view(x, items))
    return lambda *args, **kwargs: _view_of(x, *_index_view(x, items))()


def _index_view(x: torch.Tensor, items: tuple) -> tuple[list, list, Any]:
    """The sizes, strides and offset of ``x[items]`` (:func:`_indexed` checked them)."""
    sizes, strides, offset = list(x.shape), list(x.stride()), x.storage_offset()
    new_sizes: list[Any] = []
    new_strides: list[Any] = []
    dim = 0
    for item in items:
        if item is None:
            new_sizes.append(1)
            new_strides.append(strides[dim] * sizes[dim] if dim < len(sizes) else 1)
            continue
        if type(item) is int:
            offset = offset + (item % ts.size_expr(sizes[dim])) * strides[dim]
        elif _whole(item):
            new_sizes.append(sizes[dim])
            new_strides.append(strides[dim])
        else:
            size, step = ts.size_expr(sizes[dim]), item.step or 1
            if isinstance(size, int) and _number_slice(item):
                start, stop, _ = item.indices(size)
                length: Any = len(range(start, stop, step))
            else:  # torch's fake slice: Python's slice without a start or stop as torch's indexing passes it
                stop = sys.maxsize if item.stop is None else item.stop
                length, start = ts.sliced(sizes[dim], 0 if item.start is None else item.start, stop, step)
            offset = offset + start * strides[dim]
            new_sizes.append(length)
            new_strides.append(strides[dim] * step)
        dim += 1
    return [*new_sizes, *sizes[dim:]], [*new_strides, *strides[dim:]], offset


def _number_slice(item: Any) -> bool:
    """A slice of numbers (or ``None``) with a positive step: ``:``, ``:16``, ``16:``, ``::2``."""
    return _sizes_slice(item) and all(type(v) is int or v is None for v in (item.start, item.stop))


def _whole(item: slice) -> bool:
    """``:``."""
    return item.start is None and item.stop is None and item.step is None


def _sizes_slice(item: Any) -> bool:
    """A slice of numbers, sizes (``torch.SymInt``) or ``None`` with a positive step."""
    return (type(item) is slice and all(type(v) is int or v is None or isinstance(v, torch.SymInt)
                                        for v in (item.start, item.stop))
            and (item.step is None or (type(item.step) is int and item.step > 0)))  # fmt: skip


def _gathered(x: torch.Tensor, items: tuple) -> Maker | None:
    """``x[i, j]`` with integer tensors indexing ``x``'s leading dims (``padding_mask[batch_idx,
    kv_idx]``, ``weight[position_ids]``): torch's output is a new contiguous tensor of the
    indices' broadcast sizes (:func:`_broadcast`) then ``x``'s other dims, for ``x`` laid out
    contiguously. Bool indices (positions read from data) and tensors among slices run in torch."""
    if not items or len(items) > x.dim() or not _weight(x) or not _laid_out_contiguously(x):
        return None  # a parameter indexed (an embedding table) is read for its sizes only
    if not all(isinstance(t, torch.Tensor) and _viewable(t) and t.dtype in (torch.int64, torch.int32)
               and t.device == x.device for t in items):  # fmt: skip
        return None
    shape = _broadcast(items)
    if shape is None:
        return None
    return _new([*shape, *x.shape[len(items) :]], items[0], (x, *items), dtype=x.dtype)


def _flattened(args: tuple, kwargs: dict) -> Maker | None:
    """``flatten(start_dim, end_dim)``: the flattened dim is the product of their sizes, as ATen's
    ``flatten`` multiplies them (``(B, D, H/16, W/16)`` to ``(B, D, H/16*W/16)``). Of a contiguous
    tensor, a contiguous view; of another (a channels-last image batch's ``flatten(2)``: SegFormer's
    patch embeddings), a view with the strides ATen's ``view`` gives (:func:`_view_strides`) where
    it is one; where it copies, torch's."""
    x = args[0]
    start = _argument(args, kwargs, 1, "start_dim", default=0)
    end = _argument(args, kwargs, 2, "end_dim", default=-1)
    if len(args) > 3 or set(kwargs) - {"start_dim", "end_dim"} or not _viewable(x) or x.dim() == 0:
        return None
    n = x.dim()
    if type(start) is not int or type(end) is not int or not (-n <= start < n and -n <= end < n):
        return None
    start, end = start % n, end % n
    contiguous = _is_contiguous(x)
    if start > end or (start == end and not contiguous):
        return None  # torch raises, or returns x itself
    sizes = list(x.shape)
    product = sizes[start]
    for size in sizes[start + 1 : end + 1]:
        product = product * size
    sizes[start : end + 1] = [product]
    if contiguous:
        return _view_of(x, sizes, _contiguous_strides(sizes))
    strides = _view_strides(list(x.shape), list(x.stride()), sizes)
    return None if strides is None else _view_of(x, sizes, strides)


def _expanded(args: tuple, kwargs: dict) -> Maker | None:
    """``x.expand(*sizes)``: each size ``-1`` or ``x``'s own as written keeps the dim; a size
    given where ``x``'s is a literal 1, and new leading dims, get stride 0. A size against
    another symbolic one is torch's question (a guard)."""
    x = args[0]
    if kwargs or len(args) < 2 or not _viewable(x):
        return None
    sizes = _given(args)
    if not all(isinstance(s, (int, torch.SymInt)) for s in sizes) or len(sizes) < x.dim():
        return None
    new = len(sizes) - x.dim()
    old, strides = ts.size_exprs(x.shape), list(x.stride())
    out_sizes: list[Any] = []
    out_strides: list[Any] = []
    for i, size in enumerate(sizes):
        written = ts.size_expr(size)
        if i < new:
            if isinstance(written, int) and written < 0:
                return None  # torch raises
            out_sizes.append(size)
            out_strides.append(0)
        elif written == -1 or written == old[i - new]:
            out_sizes.append(x.shape[i - new])
            out_strides.append(strides[i - new])
        elif old[i - new] == 1 and not (isinstance(written, int) and written < 0):
            out_sizes.append(size)
            out_strides.append(0)
        else:
            return None
    return _view_of(x, out_sizes, out_strides)


def _embedding(args: tuple, kwargs: dict) -> Maker | None:
    """``F.embedding(ids, weight)`` with no ``max_norm`` (which renormalises the weight in place):
    the ids' sizes and the weight's concrete width, in a new contiguous tensor."""
    ids, weight = args[0], _argument(args, kwargs, 1, "weight")
    if len(args) > 3 or _argument(args, kwargs, 3, "max_norm") is not None:
        return None
    if not (_viewable(ids) and not ids.dtype.is_floating_point and isinstance(weight, torch.Tensor)):
        return None
    if weight.dim() != 2 or not _weight(weight) or not weight.dtype.is_floating_point or weight.device != ids.device:
        return None
    width = ts.size_expr(weight.shape[1])
    if not isinstance(width, int):
        return None
    return _new([*ids.shape, width], ids, (ids, weight), dtype=weight.dtype)


def _contiguous_copy(args: tuple, kwargs: dict) -> Maker | None:
    """``x.contiguous()``: ``x`` itself when contiguous, as torch returns it; else a new tensor."""
    x = args[0]
    if len(args) != 1 or (kwargs and kwargs != {"memory_format": torch.contiguous_format}) or not _viewable(x):
        return None
    return _itself(x) if _is_contiguous(x) else _new(list(x.shape), x, (x,))


def _given(args: tuple) -> list:
    """The sizes (or dims) after the tensor: ``x.view(B, T, -1)`` or ``x.view((B, T, -1))``."""
    return list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])


def _contiguous_strides(sizes: Sequence[Any]) -> list[Any]:
    """A contiguous tensor's strides for these sizes (or their expressions), from the last dim
    outward as torch computes them (the same expressions: ``C*(H*W)``)."""
    strides: list[Any] = [1] * len(sizes)
    for i in range(len(sizes) - 2, -1, -1):
        strides[i] = strides[i + 1] * sizes[i + 1]
    return strides


def _view_of(x: torch.Tensor, sizes: list, strides: list, offset: Any = None) -> Maker:
    """A view of ``x`` with these sizes and strides (its own offset unless given), in the symbols
    torch's own view would have now (:func:`ts.replaced`). With grad mode off it is made without
    dispatch, on ``x``'s storage (:func:`ts.strided_alias`): what a view is besides that (its
    ``_base``, a shared version counter) serves autograd, which an in-place op on it could reach
    only with grad mode on."""
    sizes, strides = [ts.replaced(s) for s in sizes], [ts.replaced(s) for s in strides]
    at = ts.replaced(x.storage_offset() if offset is None else offset)
    if not torch.is_grad_enabled():
        return lambda *args, **kwargs: ts.strided_alias(x, sizes, strides, at)
    return lambda *args, **kwargs: torch.ops.aten.as_strided(x, sizes, strides, at)


def _viewable(x: Any) -> bool:
    """A fake tensor holding no constant (any dtype: a view moves no value)."""
    return isinstance(x, torch.Tensor) and _constant_free(x)


def _reduction(args: tuple, kwargs: dict) -> Maker | None:
    """``x.mean(dim, keepdim)`` (``sum``, ``amax``, ``amin``) along dims given as ints, of a
    contiguous floating input; a ``dtype=`` or a reduction of every dim runs in torch."""
    x = args[0]
    dim = _argument(args, kwargs, 1, "dim")
    keepdim = _argument(args, kwargs, 2, "keepdim", default=False)
    if len(args) > 3 or set(kwargs) - {"dim", "keepdim"} or not _plain(x) or type(keepdim) is not bool:
        return None
    dims = [dim] if type(dim) is int else list(dim) if type(dim) in (list, tuple) else None
    ndim = x.dim()
    if not dims or not all(type(d) is int and -ndim <= d < ndim for d in dims):
        return None
    reduced = {d % ndim for d in dims}
    shape = [1 if i in reduced else size for i, size in enumerate(x.shape) if keepdim or i not in reduced]
    return _new(shape, x, (x,))


def _norm(checked: Callable, args: tuple, kwargs: dict, keeps_layout: bool, contiguous_below_4d: bool = False) -> Maker | None:
    """A normalisation: ``x``'s sizes, laid out as torch's output is (``contiguous_below_4d``:
    ``group_norm`` makes its input contiguous in the layout ``suggest_memory_format`` gives, which
    is contiguous for fewer than 4 dims: a diffusers attention block's ``(B, C, H*W)``)."""
    x = args[0]
    if not _plain(x, contiguous=False) or x.dim() < 2:
        return None
    if not all(_concrete(x.shape[d]) for d in checked(x, args, kwargs)):
        return None
    tensors = _tensors(args, kwargs)
    if not all(_weight(t) and t.dtype == x.dtype and t.device == x.device for t in tensors):
        return None  # a weight in another dtype or on another device: torch's promotion or error decides
    if _is_contiguous(x):
        return _alias_of(x, tensors)
    if checked is _trailing:  # layer_norm and rms_norm make a contiguous output of any input
        return _new(list(x.shape), x, tensors)
    if keeps_layout and _channels_last(x):  # batch and group norm keep a channels-last layout
        return _alias_of(x, tensors)
    if contiguous_below_4d and x.dim() == 3 and _dense(x):
        return _new(list(x.shape), x, tensors)
    return None


def _dense(x: torch.Tensor) -> bool:
    """Whether ``x``'s strides at the traced values are a contiguous tensor's with its dims
    permuted, no dim of size 1 there (a transposed token batch): torch's copy of it asks nothing
    its ranges cannot answer."""
    sizes, strides = [ts.size_hint(s) for s in x.shape], [ts.size_hint(s) for s in x.stride()]
    if None in sizes or None in strides or 1 in sizes:
        return False
    expected = 1
    for dim in sorted(range(x.dim()), key=strides.__getitem__):
        if strides[dim] != expected:
            return False
        expected *= sizes[dim]
    return True


def _binary(args: tuple, kwargs: dict, in_place: bool) -> Maker | None:
    if len(args) != 2 or set(kwargs) - {"alpha"}:
        return None
    x, other = args
    if not _plain(x, contiguous=False):
        return None
    if not _is_contiguous(x) and not _sliced(x):  # a transposed or permuted operand: its layout is kept, by a like operand
        if not _permuted_contiguous(x):
            return None
        if type(other) in (int, float):
            return _itself(x) if in_place else _alias_of(x, (x,))
        if not (isinstance(other, torch.Tensor) and _constant_free(other) and other.dtype == x.dtype
                and other.device == x.device and _same_layout(x, other)):  # fmt: skip
            return None
        return _itself(x) if in_place else _alias_of(x, (x, other))
    # contiguous operands, or cut from contiguous tensors (whose output is a new contiguous tensor)
    if type(other) in (int, float):
        if in_place:
            return _itself(x)
        return _alias_of(x, (x,)) if _is_contiguous(x) else _new(list(x.shape), x, (x,))
    if not (_plain(other, contiguous=False) and (_is_contiguous(other) or _sliced(other))
            and other.dtype == x.dtype and other.device == x.device):  # fmt: skip
        return None
    if _spans(x, other):
        full = x
    elif _spans(other, x) and not in_place:
        full = other
    else:
        return None  # sizes that broadcast only where they are equal: torch's question could fix one
    if in_place:
        return _itself(x)
    if _is_contiguous(x) and _is_contiguous(other):
        return _alias_of(full, (x, other))
    return _new(list(full.shape), full, (x, other))


def _spans(full: torch.Tensor, part: torch.Tensor) -> bool:
    """Whether ``part`` broadcasts to ``full``'s sizes as written: each of its dims, aligned from
    the right, is ``full``'s (the same expression) or a literal 1 (``(B, C, 1, 1)`` against
    ``(B, C, H, W)``: torch's broadcasting asks nothing it cannot answer from the ranges)."""
    whole, piece = ts.size_exprs(full.shape), ts.size_exprs(part.shape)
    if len(piece) > len(whole):
        return False
    return all(p == 1 or p == w for w, p in zip(whole[len(whole) - len(piece) :], piece))


def _interpolate(args: tuple, kwargs: dict) -> Maker | None:
    """``F.interpolate(x, size)``: the sizes given; ``F.interpolate(x, scale_factor=s)`` in
    "nearest" or a linear mode: the sizes torch's decomposition computes
    (:func:`ts.upsample_output_size`). Either laid out as torch's decompositions lay it out:
    as ``x`` is (:func:`_upsampled_layout`). Bicubic and area by a scale factor, antialiasing, a
    recomputed scale factor and a mode that does not fit ``x``'s dims are torch's. (YOLOS's
    bicubic resize of its position embeddings took 90% of its pass through torch's decomposition.)"""
    names = ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias")
    if len(args) > len(names) + 1 or set(kwargs) - set(names[len(args) - 1 :]):
        return None
    given = dict(zip(names, args[1:])) | kwargs
    x, size, scale, mode = args[0], given.get("size"), given.get("scale_factor"), given.get("mode", "nearest")
    if not isinstance(x, torch.Tensor) or not 3 <= x.dim() <= 5 or given.get("antialias") not in (None, False):
        return None
    if not isinstance(mode, str) or _MODE_DIMS.get(mode, x.dim()) != x.dim():
        return None  # torch raises
    if mode.startswith("nearest") and given.get("align_corners") is not None:
        return None  # torch raises
    layout = _upsampled_layout(x, mode)
    if layout is None:
        return None
    if size is not None and scale is None:
        sizes = list(size) if isinstance(size, (list, tuple)) else [size] * (x.dim() - 2)
        if len(sizes) != x.dim() - 2 or not all(isinstance(s, (int, torch.SymInt)) for s in sizes):
            return None
        return _new([*x.shape[:2], *sizes], x, (x,), memory_format=layout)
    if size is not None or (mode != "nearest" and mode not in _LINEAR_MODES):
        return None
    if given.get("recompute_scale_factor") not in (None, False):
        return None
    scales = list(scale) if isinstance(scale, (list, tuple)) else [scale] * (x.dim() - 2)
    if len(scales) != x.dim() - 2 or not all(type(s) in (int, float) and s > 0 for s in scales):
        return None
    factors = [float(s) for s in scales]  # as torch's argument parser hands them to the decomposition
    return _by_torchs_formula(lambda: ts.upsample_output_size(x, factors), x, (x,), layout)


# F.interpolate's modes that take one number of dims, and its linear modes.
_MODE_DIMS = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
_LINEAR_MODES = ("linear", "bilinear", "trilinear")


def _upsampled_layout(x: Any, mode: str) -> torch.memory_format | None:
    """The layout of torch's upsampled output for a floating ``x``: contiguous for a contiguous
    ``x``, else the one the decompositions end with, ``suggest_memory_format(x)``: torch's answer
    where ``x``'s sizes and strides are numbers (no question to ask), else ``x``'s own layout
    (:func:`_image_layout`); except on CUDA, where torch picks by the channel count."""
    if _plain(x):
        return torch.contiguous_format
    if not _plain(x, contiguous=False) or x.device.type == "cuda" or mode == "area":
        return None
    if all(type(n) is int for n in (*x.shape, *x.stride())):
        return ts.suggest_memory_format(x)
    return _image_layout(x)


def _linear(args: tuple, kwargs: dict) -> Maker | None:
    x = args[0]
    weight = _argument(args, kwargs, 1, "weight")
    bias = _argument(args, kwargs, 2, "bias")
    if not _plain(x, contiguous=False) or x.dim() < 1 or not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        return None
    tensors = _with_weights(x, weight, bias)
    if tensors is None:
        return None
    features = ts.size_exprs(weight.shape)
    if not all(isinstance(f, int) for f in features) or ts.size_expr(x.shape[-1]) != features[1]:
        return None
    if bias is not None and (bias.dim() != 1 or ts.size_exprs(bias.shape) != (features[0],)):
        return None
    return _new([*x.shape[:-1], features[0]], x, tensors)


def _cat(args: tuple, kwargs: dict) -> Maker | None:
    """``torch.cat`` along a dim of concrete size in each operand, laid out contiguously (or
    suggesting it), the other sizes the same as written: a new contiguous tensor of the first's
    sizes with that dim summed. Other sizes equal at the traced values but written differently
    (Swin's patch merging: ``x[:, 0::2]``'s ``(H' + 1)//2`` and ``x[:, 1::2]``'s ``H'//2``, one
    size where ``H'`` is even) get torch's checks that they match (:func:`ts.cat_output_size`,
    inside the op), then the first's sizes, as torch's output has them."""
    tensors = _argument(args, kwargs, 0, "tensors")
    dim = _argument(args, kwargs, 1, "dim", default=0)
    if set(kwargs) - {"tensors", "dim"} or type(tensors) not in (list, tuple) or not tensors or type(dim) is not int:
        return None
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        return None
    kept = [t for t in tensors if not _legacy_empty(t)]  # torch skips them
    if not kept or any(t.dtype != kept[0].dtype or t.device != kept[0].device for t in tensors):
        return None
    if len(kept) == 1 and len(tensors) > 1:  # a cache that starts empty: torch.cat([torch.tensor([]), x], dim=-2)
        only = kept[0]
        if not _plain(only, contiguous=False) or not -only.dim() <= dim < only.dim() or _channels_last(only):
            return None
        return _new(list(only.shape), only, tensors)
    tensors, first = kept, kept[0]
    if not all(_plain(t, contiguous=False) for t in tensors):
        return None
    if not all(_is_contiguous(t) for t in tensors) and not any(_suggests_contiguous(t) for t in tensors):
        return None  # torch's output takes the operands' channels-last layout, or strides it decides
    ndim = first.dim()
    if ndim == 0 or not -ndim <= dim < ndim:
        return None
    dim %= ndim
    sizes = [ts.size_exprs(t.shape) for t in tensors]
    if any(t.dim() != ndim or t.dtype != first.dtype or t.device != first.device for t in tensors):
        return None
    along = [s[dim] for s in sizes]
    if not all(isinstance(size, int) for size in along):
        return None
    if all(s[:dim] + s[dim + 1 :] == sizes[0][:dim] + sizes[0][dim + 1 :] for s in sizes):
        shape = list(first.shape)
        shape[dim] = sum(along)
        return _new(shape, first, tensors)
    # Sizes equal at the traced values, written differently (Swin's patch merging of x[:, 0::2]
    # and x[:, 1::2]): torch's checks that they match (guards) and its sizes.
    hints = [[ts.size_hint(size) for i, size in enumerate(t.shape) if i != dim] for t in tensors]
    if None in hints[0] or any(h != hints[0] for h in hints):
        return None  # torch raises, or a size is read from data
    return _by_torchs_formula(lambda: ts.cat_output_size(tensors, dim), first, tensors)


def _suggests_contiguous(t: torch.Tensor) -> bool:
    """Whether torch's ``suggest_memory_format`` of ``t`` is the contiguous format, by which an
    operand makes ``cat``'s output contiguous: fewer or more than 4 or 5 dims, or strides that
    are not channels-last-like (``are_strides_like_channels_last_or_false``, whose comparisons
    torch decides for these sizes statically or by guards that fix no dim), read at the traced
    values; a case that reaches the batch dim's comparison with equality (a guard that could
    fix a dim) is left to torch."""
    if t.dim() not in (4, 5):
        return True
    sizes, strides = [ts.size_hint(s) for s in t.shape], [ts.size_hint(s) for s in t.stride()]
    if None in sizes or None in strides:
        return False
    if strides[1] == 0:
        return True
    low = 0
    for d in [1, 3, 2, 0] if t.dim() == 4 else [1, 4, 3, 2, 0]:
        if sizes[d] == 0 or strides[d] < low:
            return True
        if d == 0:
            return False
        low = strides[d] * sizes[d]
    return False


def _legacy_empty(t: torch.Tensor) -> bool:
    """A 1-d tensor of size 0, which ``torch.cat`` skips whatever the other tensors' dims."""
    return t.dim() == 1 and ts.size_expr(t.shape[0]) == 0


def _conv(spatial: int, args: tuple, kwargs: dict) -> Maker | None:
    """``F.conv2d(x, weight, bias, stride, padding, dilation, groups)`` on input channels the
    weight's: with stride 1 and the padding that keeps each size (``padding="same"``, or 1 for a
    3x3 kernel), the input's sizes with the weight's channels; otherwise, on a batched ``x``, the
    sizes torch's meta function computes (:func:`_by_torchs_formula`). Laid out as ``x`` is,
    contiguously or channels-last (:func:`_conv_layout`); a 1-d convolution of a transposed
    sequence dense at the traced values (wav2vec2's positional conv) contiguously, as torch's
    fake ``conv1d`` makes its input contiguous first (a copy whose questions fix nothing)."""
    x, weight = args[0], _argument(args, kwargs, 1, "weight")
    bias = _argument(args, kwargs, 2, "bias")
    if not _plain(x, contiguous=False) or x.dim() not in (spatial + 1, spatial + 2) or not isinstance(weight, torch.Tensor):
        return None
    layout = _conv_layout(x, weight)
    if layout is None and spatial == 1 and x.dim() == 3 and weight.is_contiguous() and _dense(x):
        layout = torch.contiguous_format  # torch's fake conv1d makes its input contiguous first
    tensors = _with_weights(x, weight, bias)
    if tensors is None or layout is None:
        return None
    kernel = ts.size_exprs(weight.shape)
    groups = _argument(args, kwargs, 6, "groups", default=1)
    if weight.dim() != spatial + 2 or not all(isinstance(k, int) for k in kernel) or type(groups) is not int:
        return None
    if ts.size_expr(x.shape[-spatial - 1]) != kernel[1] * groups:
        return None  # the input's channels are checked against the weight's
    stride = _per_dim(_argument(args, kwargs, 3, "stride", default=1), spatial)
    dilation = _per_dim(_argument(args, kwargs, 5, "dilation", default=1), spatial)
    padding = _argument(args, kwargs, 4, "padding", default=0)
    if stride is None or dilation is None:
        return None
    same_size = [*x.shape[: -spatial - 1], kernel[0], *x.shape[-spatial:]]
    if padding == "same" and all(s == 1 for s in stride):
        return _new(same_size, x, tensors, memory_format=layout)
    padding = [0] * spatial if padding == "valid" else _per_dim(padding, spatial)
    if padding is None:
        return None  # "same" with a stride: torch raises
    if all(s == 1 for s in stride) and all(2 * p == d * (k - 1) for p, d, k in zip(padding, dilation, kernel[2:])):
        return _new(same_size, x, tensors, memory_format=layout)
    if x.dim() != spatial + 2:
        return None  # an unbatched input: torch adds and drops a batch dim
    return _by_torchs_formula(lambda: ts.conv_output_size(x, weight, stride, padding, dilation, groups), x, tensors,
                              layout)  # fmt: skip


def _conv_layout(x: torch.Tensor, weight: torch.Tensor) -> torch.memory_format | None:
    """The layout torch's fake convolution gives its output for an input laid out as ``x``
    (:func:`_image_layout`) and a contiguous weight; ``None`` for a channels-last weight (torch's)."""
    return _image_layout(x) if weight.is_contiguous() else None


def _image_layout(x: torch.Tensor) -> torch.memory_format | None:
    """``x``'s layout, when torch keeps it for a convolution's or an upsampling's output:
    contiguous, or channels-last for an image batch with no dim of literal size 1 whose strides
    are a channels-last tensor's (``(C*H*W, 1, C*W, C)``, equal as polynomials: written as
    ``H*(C*W)`` after attention's reshape back, torch's static evaluation decides them equal
    without a guard), or a permute of torch's own contiguous strides (:func:`_torchs_channels_last`);
    else ``None``."""
    if _is_contiguous(x):
        return torch.contiguous_format
    sizes = ts.size_exprs(x.shape)
    if x.dim() != 4 or 1 in sizes:
        return None
    _, channels, height, width = sizes
    expected = (channels * height * width, 1, channels * width, channels)
    strides = ts.size_exprs(x.stride())
    if all(stride == want or _same_polynomial(stride, want) for stride, want in zip(strides, expected)):
        return torch.channels_last
    return torch.channels_last if _torchs_channels_last(x) else None


def _conv_transpose(spatial: int, args: tuple, kwargs: dict) -> Maker | None:
    """``F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation)`` of
    a batched ``x`` whose channels are the weight's first dim: the sizes torch's meta function
    computes (:func:`_by_torchs_formula`), ``groups`` times the weight's second dim channels."""
    x, weight = args[0], _argument(args, kwargs, 1, "weight")
    bias = _argument(args, kwargs, 2, "bias")
    if not _plain(x, contiguous=False) or x.dim() != spatial + 2 or not isinstance(weight, torch.Tensor):
        return None
    layout = _conv_layout(x, weight)
    tensors = _with_weights(x, weight, bias)
    if tensors is None or layout is None or weight.dim() != spatial + 2:
        return None
    groups = _argument(args, kwargs, 6, "groups", default=1)
    kernel = ts.size_exprs(weight.shape)
    if not all(isinstance(k, int) for k in kernel) or type(groups) is not int or ts.size_expr(x.shape[1]) != kernel[0]:
        return None  # the input's channels are checked against the weight's
    stride, padding, output_padding, dilation = (
        _per_dim(_argument(args, kwargs, at, name, default), spatial)
        for at, name, default in ((3, "stride", 1), (4, "padding", 0), (5, "output_padding", 0), (7, "dilation", 1)))  # fmt: skip
    if stride is None or padding is None or output_padding is None or dilation is None:
        return None
    return _by_torchs_formula(lambda: ts.conv_output_size(x, weight, stride, padding, dilation, groups, output_padding),
                              x, tensors, layout)  # fmt: skip


def _by_torchs_formula(output_size: Callable[[], list], x: torch.Tensor, tensors: Sequence[Any],
                       memory_format: torch.memory_format = torch.contiguous_format) -> Maker:  # fmt: skip
    """A new contiguous tensor of the sizes ``output_size()`` computes with the functions torch's
    own meta kernel or decomposition computes them with, for a strided or unpadded convolution, a
    pool, a constant pad (:mod:`ts`): the same SymInt arithmetic in the same order, so the same
    expressions (``(H - 1)//2 + 1``) and the same checks, which may add guards (``ceil_mode``'s
    last window, a kernel that must fit). They are computed when the op runs, inside the recorded
    op as torch's are, so that a specialisation is the op's. What torch's fake op does besides
    (its dispatch, the backend and layout it picks for a contiguous input, a pad's fill and copy,
    its new tensor's strides) is what costs: 5-10 ms per strided convolution, 2-30 ms per pad."""

    def make(*args: Any, **kwargs: Any) -> torch.Tensor:
        return _new(output_size(), x, tensors, memory_format=memory_format)()

    return make


def _pool(func: Callable, args: tuple, kwargs: dict) -> Maker | None:
    """``F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)`` (no indices) and
    ``F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
    divisor_override)`` of a contiguous 4-d floating ``x``: the sizes torch's meta function
    computes (:func:`_by_torchs_formula`), in a new contiguous tensor. Each size argument is an
    int or two (``stride`` also ``None``: the kernel's); anything else is torch's to parse."""
    names = MAX_POOL_ARGUMENTS if func is F.max_pool2d else AVG_POOL_ARGUMENTS
    if len(args) > len(names) + 1 or set(kwargs) - set(names[len(args) - 1 :]):
        return None
    given = dict(zip(names, args[1:])) | kwargs
    x = args[0]
    if not _plain(x) or x.dim() != 4 or "kernel_size" not in given or given.get("return_indices"):
        return None
    kernel, padding = _per_dim(given["kernel_size"], 2), _per_dim(given.get("padding", 0), 2)
    stride_given = given.get("stride")
    stride = [] if stride_given is None or stride_given == [] else _per_dim(stride_given, 2)
    dilation, ceil_mode = _per_dim(given.get("dilation", 1), 2), given.get("ceil_mode", False)
    if kernel is None or padding is None or stride is None or dilation is None or type(ceil_mode) is not bool:
        return None
    if func is F.max_pool2d:
        return _by_torchs_formula(lambda: ts.max_pool2d_output_size(x, kernel, stride, padding, dilation, ceil_mode),
                                  x, (x,))  # fmt: skip
    if type(given.get("count_include_pad", True)) is not bool or given.get("divisor_override") is not None:
        return None
    return _by_torchs_formula(lambda: ts.avg_pool2d_output_size(x, kernel, stride, padding, ceil_mode), x, (x,))


def _padded(args: tuple, kwargs: dict) -> Maker | None:
    """``F.pad(x, pad, "constant", value)`` of a contiguous floating ``x`` by pads of at least 0
    (TF-style "same" padding, a U-Net's crop-free skip, Swin's pad to whole windows, ``(7 - W %
    7) % 7``): the sizes torch's decomposition computes
    (:func:`ts.constant_pad_output_size`), in a new contiguous tensor. A negative pad (torch
    narrows ``x``), another mode, a fill that is not a number: torch's."""
    names = ("pad", "mode", "value")
    if len(args) > len(names) + 1 or set(kwargs) - set(names[len(args) - 1 :]):
        return None
    given = dict(zip(names, args[1:])) | kwargs
    x, pad = args[0], given.get("pad")
    if given.get("mode", "constant") != "constant" or type(given.get("value", 0.0)) not in (int, float, type(None)):
        return None
    if not _plain(x) or type(pad) not in (tuple, list) or len(pad) % 2 or len(pad) // 2 > x.dim():
        return None
    hints = [ts.size_hint(p) if type(p) is int or isinstance(p, torch.SymInt) else None for p in pad]
    if not all(hint is not None and hint >= 0 for hint in hints):
        return None  # a negative pad, or one read from data
    return _by_torchs_formula(lambda: ts.constant_pad_output_size(x, list(pad)), x, (x,))


def _per_dim(value: Any, spatial: int) -> list[int] | None:
    """A conv's ``stride``/``padding``/``dilation`` as one int per spatial dim, if it is ints."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * spatial
    return values if len(values) == spatial and all(type(v) is int for v in values) else None


def _adaptive_pool(spatial: int, args: tuple, kwargs: dict) -> Maker | None:
    x = args[0]
    size = _argument(args, kwargs, 1, "output_size")
    if not _plain(x) or x.dim() not in (spatial + 1, spatial + 2):
        return None
    sizes = list(size) if isinstance(size, (list, tuple)) else [size] * spatial
    if len(sizes) != spatial or not all(s is None or isinstance(s, (int, torch.SymInt)) for s in sizes):
        return None
    kept = x.shape[-spatial:]
    return _new([*x.shape[:-spatial], *(k if s is None else s for s, k in zip(sizes, kept))], x, (x,))


def _matmul(func: Callable, args: tuple, kwargs: dict) -> Maker | None:
    """``a @ b`` where both have the same number of dims (at least 2) and the same batch dims
    as written, or ``b`` is a matrix of concrete sizes (``(B, T, D) @ W``: a projection written
    out, Falcon's ``x @ self.weight.T``; torch folds ``a``'s batch dims into its rows; a symbolic
    matrix may broadcast instead, and runs in torch), and ``a``'s columns are
    ``b``'s rows as written (``(B, h, T, d) @ (B, h, d, T)``: attention's scores); broadcasting
    batch dims and vectors run in torch."""
    if len(args) != 2 or kwargs:
        return None
    a, b = args
    matrix = isinstance(b, torch.Tensor) and b.dim() == 2 and all(type(n) is int for n in b.shape)  # a weight too
    if not (_plain(a, contiguous=False) and (matrix or _plain(b, contiguous=False))) or not _with_weights(a, b, None):
        return None
    if a.dim() < 2 or (a.dim() != b.dim() and (not matrix or func in (torch.bmm, _T.bmm))):
        return None
    if func in (torch.bmm, _T.bmm) and a.dim() != 3:
        return None
    left, right = ts.size_exprs(a.shape), ts.size_exprs(b.shape)
    if (a.dim() == b.dim() and left[:-2] != right[:-2]) or left[-1] != right[-2]:
        return None  # torch would ask whether they are equal: a guard, maybe a replacement
    return _new([*a.shape[:-1], b.shape[-1]], a, (a, b))


def _grouped_mm(args: tuple, kwargs: dict) -> Maker | None:
    """``torch._grouped_mm(a, b, offs=...)``, the experts of an MoE layer (transformers' grouped_mm
    on torch 2.10 and later): torch 2.13's meta function rejects operands other than bfloat16 (its
    CUDA kernel's rule), so on the CPU torch's fake run stops there, though the CPU kernel the
    traced run used took float32 (later releases take it). Made as the meta function makes it
    (:func:`ts.grouped_mm_output`), off CUDA, without autograd (the meta output is a new tensor,
    torch's would need grad)."""
    if len(args) != 2 or set(kwargs) - {"offs", "bias", "out_dtype"} or kwargs.get("bias") is not None:
        return None
    a, b, offs = *args, kwargs.get("offs")
    if not (_plain(a, contiguous=False) and _with_weights(a, b, None)) or _needs_grad((a, b)):
        return None
    if a.device.type == "cuda" or {a.dim(), b.dim()} - {2, 3}:
        return None
    if (a.dim() == 2 or b.dim() == 2) and not (isinstance(offs, torch.Tensor) and offs.dim() == 1):
        return None
    out_dtype = kwargs.get("out_dtype")
    return lambda *args, **kwargs: ts.grouped_mm_output(a, b, offs, out_dtype)

def _addmm(args: tuple, kwargs: dict) -> Maker | None:
    """``torch.addmm(bias, x, weight)`` (numbers for ``beta=``, ``alpha=``) on a 2-d ``x`` whose
    columns are the weight's rows, a weight of concrete sizes, and a bias of its columns: ``x``'s
    rows and the weight's columns, as ``linear``."""
    if len(args) != 3 or set(kwargs) - {"beta", "alpha"} or any(type(v) not in (int, float) for v in kwargs.values()):
        return None
    bias, x, weight = args
    if not _plain(x, contiguous=False) or x.dim() != 2:
        return None
    if not (isinstance(weight, torch.Tensor) and weight.dim() == 2 and isinstance(bias, torch.Tensor)):
        return None
    tensors = _with_weights(x, weight, bias)
    if tensors is None:
        return None
    rows, columns = ts.size_exprs(weight.shape)
    if not (isinstance(rows, int) and isinstance(columns, int)) or ts.size_expr(x.shape[1]) != rows:
        return None  # a symbolic weight, or columns torch would check against its rows
    if ts.size_exprs(bias.shape) not in ((columns,), (1, columns)):
        return None
    return _new([x.shape[0], columns], x, tensors)


def _recurrent(args: tuple, kwargs: dict) -> Maker | None:
    """``torch.gru(input, hx, weights, bias, layers, dropout, train, bidirectional, batch_first)``;
    ``torch.lstm`` takes ``(h0, c0)`` as ``hx`` and returns ``(output, h_n, c_n)``. A packed
    sequence (``data, batch_sizes, hx, ...``) runs in torch."""
    if len(args) != 9 or kwargs:
        return None
    x, hx, weights, bidirectional = args[0], args[1], args[2], args[7]
    states = list(hx) if isinstance(hx, (list, tuple)) else [hx]
    if not _plain(x) or not all(_plain(state) and state.dtype == x.dtype for state in states):
        return None
    if x.dim() not in (2, 3) or not _concrete(x.shape[-1]) or not _concrete(states[0].shape[-1]):
        return None  # the input's features are checked against the weights
    tensors = [x, *states, *(w for w in weights if isinstance(w, torch.Tensor))]
    if any(w.dtype != x.dtype for w in tensors):
        return None
    features = (2 if bidirectional else 1) * ts.size_expr(states[0].shape[-1])
    output = _new([*x.shape[:-1], features], x, tensors)
    finals = [_new(list(state.shape), state, tensors) for state in states]

    def make(*args: Any, **kwargs: Any) -> tuple:
        return (output(), *(final() for final in finals))

    return make


def _attention(args: tuple, kwargs: dict) -> Maker | None:
    """``F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa)``
    where torch picks its fused CPU kernel, whose output is ``torch.empty_like(q)``: 4-d ``q``,
    ``k``, ``v`` of one floating dtype on the CPU, dense in their last dim, with the same batch and
    heads and one concrete head size as written, ``k`` and ``v`` the same length; no dropout; a
    mask (bool or ``q``'s dtype, needing no grad) whose last two dims are ``q``'s and ``k``'s
    lengths or 1 and whose leading ones are the batch, the heads or 1. The output has ``q``'s
    sizes, and its strides for a dense ``q`` (contiguous, or a permutation of contiguous:
    ``x.view(B, T, h, d).transpose(1, 2)``), else dense strides in the order of ``q``'s
    (:func:`_dense_strides`). Anything else (GQA, the math kernel torch falls back to, another
    device) runs in torch."""
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
    if len(args) > len(names) or set(kwargs) - set(names[len(args) :]):
        return None
    given = dict(zip(names, args)) | kwargs
    if not all(name in given for name in names[:3]):
        return None
    q, k, v, mask = given["query"], given["key"], given["value"], given.get("attn_mask")
    if given.get("dropout_p", 0.0) != 0.0 or (mask is not None and given.get("is_causal")):
        return None  # dropout draws from the RNG on another path; a mask with is_causal raises
    if given.get("enable_gqa") or not torch.backends.cuda.flash_sdp_enabled():  # the CPU kernel's switch too
        return None
    if not all(_plain(t, contiguous=False) and t.dim() == 4 and t.dtype == q.dtype and t.device.type == "cpu"
               for t in (q, k, v)):  # fmt: skip
        return None
    queries, keys, values = (ts.size_exprs(t.shape) for t in (q, k, v))
    if not (queries[:2] == keys[:2] == values[:2] and keys[2] == values[2]):
        return None  # torch compares them: a guard, or the math kernel's broadcasting
    if not (isinstance(queries[3], int) and queries[3] == keys[3] == values[3]):
        return None
    if 0 in (*queries, *keys):
        return None  # an empty sequence: the math kernel
    if any(ts.size_expr(t.stride(-1)) != 1 for t in (q, k, v)):
        return None
    dense = _laid_out_contiguously(q) or _permuted_contiguous(q) or _dense_but_for_ones(q)
    strides = None if dense else _dense_strides(q)
    if not dense and strides is None:
        return None  # strides torch's empty_like would write otherwise
    tensors = [q, k, v]
    if mask is not None:
        if not (_viewable(mask) and mask.dim() in (2, 4) and mask.device == q.device and not mask.requires_grad):
            return None
        if mask.dtype not in (torch.bool, q.dtype):
            return None
        sizes = ts.size_exprs(mask.shape)
        lead = sizes[:-2] if mask.dim() == 4 else ()
        if sizes[-2] not in (1, queries[2]) or sizes[-1] not in (1, keys[2]) or not all(
                m in (1, full) for m, full in zip(lead, queries[:2])):  # fmt: skip
            return None
        tensors.append(mask)
    return _alias_of(q, tensors) if strides is None else _new_strided(q, strides, tensors)


def _multi_head_attention(args: tuple, kwargs: dict) -> Maker | None:
    """``F.multi_head_attention_forward(query, key, value, embed_dim, heads, ...)`` with the input
    projection packed (``in_proj_weight``) or separate, no ``bias_k``/``bias_v``, zero attention or
    static keys, and no dropout that runs: ``query`` ``(L, N, E)`` (or ``(L, E)``), ``key`` and
    ``value`` ``(S, N, ...)``, the masks ``(L, S)``/``(N*heads, L, S)`` and ``(N, S)``, each size
    as written where torch compares them, ``E`` and the weights concrete. Torch's output is its
    output projection viewed back to ``(L, N, E_out)``, contiguous, and the attention weights
    ``(N, L, S)`` (``(N, heads, L, S)`` not averaged), contiguous, or ``None``; unbatched, without
    the batch dim. Anything else (a size torch's checks would compare, a mask of another kind) runs
    in torch."""
    try:
        given = _MHA_PARAMETERS.bind(*args, **kwargs)
    except TypeError:
        return None
    given.apply_defaults()
    a = given.arguments
    query, key, value, heads, embed_dim = a["query"], a["key"], a["value"], a["num_heads"], a["embed_dim_to_check"]
    if any(a[name] is not None for name in ("bias_k", "bias_v", "static_k", "static_v")) or a["add_zero_attn"]:
        return None  # a longer source: torch's sizes
    if a["training"] and a["dropout_p"] != 0.0 or type(heads) is not int or type(embed_dim) is not int or heads < 1:
        return None
    if not all(_plain(t, contiguous=False) and t.dtype == query.dtype and t.device == query.device
               for t in (query, key, value)):  # fmt: skip
        return None
    batched = query.dim() == 3
    if query.dim() not in (2, 3) or key.dim() != query.dim() or value.dim() != query.dim():
        return None
    queries, keys, values = (ts.size_exprs(t.shape) for t in (query, key, value))
    if queries[-1] != embed_dim or embed_dim % heads or queries[1:-1] != keys[1:-1] or keys[:-1] != values[:-1]:
        return None  # sizes torch checks or compares: a raise, or a guard
    projections = ("q_proj_weight", "k_proj_weight", "v_proj_weight") if a["use_separate_proj_weight"] else ()
    weights = [a[name] for name in projections] or [a["in_proj_weight"]]
    expected = [(embed_dim, embed_dim), (embed_dim, keys[-1]), (embed_dim, values[-1])] if projections else [
        (3 * embed_dim, embed_dim)]  # fmt: skip
    if not projections and not keys[-1] == values[-1] == embed_dim:
        return None  # the packed projection checks the key's and value's features, torch compares their shapes
    out_weight, out_bias, in_bias = a["out_proj_weight"], a["out_proj_bias"], a["in_proj_bias"]
    if not all(isinstance(w, torch.Tensor) and ts.size_exprs(w.shape) == shape for w, shape in zip(weights, expected)):
        return None
    if not isinstance(out_weight, torch.Tensor) or out_weight.dim() != 2 or ts.size_exprs(out_weight.shape)[1] != embed_dim:
        return None
    features = ts.size_expr(out_weight.shape[0])
    for bias, size in ((in_bias, 3 * embed_dim), (out_bias, features)):
        if bias is not None and not (isinstance(bias, torch.Tensor) and ts.size_exprs(bias.shape) == (size,)):
            return None
    parameters = [t for t in (*weights, out_weight, in_bias, out_bias) if t is not None]
    if not isinstance(features, int) or not all(
            _weight(t) and t.dtype == query.dtype and t.device == query.device for t in parameters):  # fmt: skip
        return None
    length, source = queries[0], keys[0]
    batch = queries[1] if batched else 1
    masks = _mha_masks(a["attn_mask"], a["key_padding_mask"], query, heads, (length, source, batch), batched)
    if masks is None or (a["is_causal"] and a["attn_mask"] is None):
        return None  # torch raises without a mask for is_causal
    lead = list(query.shape[:-1])
    output = _new([*lead, features], query, [query, key, value, *parameters, *masks])
    if not a["need_weights"]:
        return lambda *args, **kwargs: (output(), None)
    rows = [] if not batched else [query.shape[1]]
    per_head = [] if a["average_attn_weights"] else [heads]
    scores = _new([*rows, *per_head, query.shape[0], key.shape[0]], query,
                  [query, key, *(t for t in parameters if t is not out_weight and t is not out_bias), *masks])  # fmt: skip
    return lambda *args, **kwargs: (output(), scores())


def _binary_laid_out_by_first(func: Callable, args: tuple, kwargs: dict) -> Maker | None:
    """``x + y`` (``-``, ``*``, ``/``, in place too) on floating tensors of the same sizes as
    written, none 1, laid out differently (a residual added to a transposed branch, both as
    torch's own ops wrote their strides: ``128*Max(1, N)``), where ``x``'s strides, distinct and
    not 0 at the traced values, decide each comparison by which torch orders the output's dims
    (``compute_elementwise_output_logical_to_physical_perm``): the output is dense in ``x``'s
    order with the strides torch computes for it (:func:`_elementwise_strides`). The reflected
    forms (``__rsub__``: ``x`` second) run in torch."""
    name = getattr(func, "__name__", "")
    if len(args) != 2 or name.startswith("__r") or (kwargs and (set(kwargs) != {"alpha"} or "add" not in name
                                                                and "sub" not in name)):  # fmt: skip
        return None
    if any(type(v) not in (int, float) for v in kwargs.values()):
        return None
    x, other = args
    if not _plain(x, contiguous=False) or not isinstance(other, torch.Tensor):
        return None
    if other.dtype != x.dtype or other.device != x.device:
        return None
    if ts.size_exprs(x.shape) != ts.size_exprs(other.shape):
        return _binary_checked_by_first(x, other) if _weight(other) else None
    if not _plain(other, contiguous=False):
        return None
    strides = _elementwise_strides(x)
    if strides is None:
        return None
    if ts.size_exprs(strides) == ts.size_exprs(x.stride()):
        return _alias_of(x, (x, other))
    return _new_strided(x, strides, (x, other))


def _binary_checked_by_first(x: torch.Tensor, other: torch.Tensor) -> Maker | None:
    """``x + y`` as :func:`_binary_laid_out_by_first` takes it, of a non-contiguous ``x`` (torch's
    general path: its output's layout is decided by the operands' strides), where ``y``'s sizes
    are ``x``'s, literal ones, or numbers that ``x``'s sizes equal at the traced values (MLP-Mixer's
    residual onto its token mixing, ``(B, N, D)`` and ``(B, 64, D)``; DiT's patches plus their
    positions, ``(1, 64, D)``, a buffer): torch's broadcasting keeps ``x``'s sizes and checks each of those
    against ``y``'s (``Eq(N, 64)``, a guard, a replacement when ``N`` is one symbol), here by the
    same comparison, in the op; its other questions (is a size 1?) are ``Ne`` guards that fix
    nothing. The output: ``x``'s sizes, dense in ``x``'s order (:func:`_elementwise_strides`)."""
    if other.dim() != x.dim() or _is_contiguous(x):
        return None
    checked = []
    for size, other_size, mine, theirs in zip(x.shape, other.shape, ts.size_exprs(x.shape),
                                              ts.size_exprs(other.shape)):  # fmt: skip
        if theirs == 1 or theirs == mine:
            continue
        if not isinstance(theirs, int) or ts.size_hint(size) != theirs:
            return None  # two symbolic sizes (torch's question), or sizes that differ (torch raises)
        checked.append((size, other_size))
    strides = _elementwise_strides(x)
    if not checked or strides is None:
        return None
    made = _new_strided(x, strides, (x, other))

    def make(*args: Any, **kwargs: Any) -> torch.Tensor:
        for size, other_size in checked:
            torch._check(size == other_size, lambda: "the operands' sizes do not broadcast")
        return made()

    return make


def _elementwise_strides(x: torch.Tensor) -> list | None:
    """The strides torch gives an elementwise output whose layout ``x`` decides: dense, its dims in
    the order of ``x``'s strides, each stride the product of the sizes inside it as torch's
    ``make_contiguous_strides_for`` writes it (``torch.sym_max(size, 1)``); ``None`` unless
    ``x``'s strides are distinct and not 0 at the traced values and no size is 1 there."""
    hints = [ts.size_hint(stride) for stride in x.stride()]
    if x.dim() < 2 or None in hints or 0 in hints or len(set(hints)) < len(hints):
        return None
    if any(ts.size_hint(size) in (None, 1) for size in x.shape):
        return None
    strides: list[Any] = [None] * x.dim()
    inner: Any = 1
    for dim in sorted(range(x.dim()), key=hints.__getitem__):
        strides[dim] = inner
        inner = inner * torch.sym_max(x.shape[dim], 1)
    return strides


def _triangle(args: tuple, kwargs: dict) -> Maker | None:
    """``torch.triu(x, diagonal)``/``tril`` of a tensor of at least 2 dims laid out contiguously:
    torch's output (``where(mask, x, 0)``) is a new contiguous tensor of its sizes and dtype."""
    x = args[0]
    diagonal = _argument(args, kwargs, 1, "diagonal", default=0)
    if len(args) > 2 or set(kwargs) - {"diagonal"} or type(diagonal) is not int:
        return None
    if not _viewable(x) or x.dim() < 2 or x.dtype.is_complex or not _laid_out_contiguously(x):
        return None
    return _new(list(x.shape), x, (x,))


def _rolled(args: tuple, kwargs: dict) -> Maker | None:
    """``torch.roll(x, shifts, dims)`` of a tensor laid out contiguously, with as many integer
    shifts as dims (or one shift and no dims: the flattened tensor rolled): torch's output (its
    decomposition indexes each dim by ``(arange(size) - shift) % size``) is a new contiguous tensor
    of ``x``'s sizes and dtype. A shift that is a size, or a dim of 0 elements, is torch's."""
    x = args[0]
    shifts, dims = _argument(args, kwargs, 1, "shifts"), _argument(args, kwargs, 2, "dims", default=())
    if len(args) > 3 or set(kwargs) - {"shifts", "dims"} or not _viewable(x) or x.dim() == 0:
        return None
    shifts, dims = _int_tuple(shifts), _int_tuple(dims)
    if shifts is None or dims is None or not (len(shifts) == len(dims) or (len(shifts) == 1 and not dims)):
        return None  # torch raises, or a shift is a size
    if not all(-x.dim() <= d < x.dim() for d in dims) or 0 in (ts.size_hint(s) for s in x.shape):
        return None
    if x.dtype.is_complex or not _laid_out_contiguously(x):
        return None
    return _new(list(x.shape), x, (x,))


def _int_tuple(value: Any) -> tuple[int, ...] | None:
    """An int or a sequence of ints as a tuple, else ``None``."""
    values = (value,) if type(value) is int else value
    return (
        tuple(values) if isinstance(values, (tuple, list)) and all(type(v) is int for v in values) else None
    )


def _all_or_any(args: tuple, kwargs: dict) -> Maker | None:
    """``x.all()``/``any()`` of every element (no dim) of a bool, integer or floating tensor other
    than ``uint8`` (whose result is ``uint8``): a new 0-d bool tensor."""
    x = args[0]
    if len(args) != 1 or kwargs or not _viewable(x) or x.dtype in (torch.uint8, torch.complex64, torch.complex128):
        return None
    return _new([], x, (x,), dtype=torch.bool)


def _mha_masks(attn_mask: Any, padding_mask: Any, query: torch.Tensor, heads: int, sizes: tuple,
               batched: bool) -> list | None:  # fmt: skip
    """The masks of :func:`_multi_head_attention` when each is ``None`` or bool or the query's
    dtype, on its device, of the sizes torch checks as written: ``attn_mask`` ``(L, S)`` or
    ``(N*heads, L, S)`` laid out contiguously (torch views it), ``key_padding_mask`` ``(N, S)`` or
    unbatched ``(S,)``; else ``None``."""
    length, source, batch = sizes
    masks = []
    for mask, shapes in ((attn_mask, [(length, source), (batch * heads, length, source)]),
                         (padding_mask, [(batch, source)] if batched else [(source,)])):  # fmt: skip
        if mask is None:
            continue
        if not (_viewable(mask) and mask.dtype in (torch.bool, query.dtype) and mask.device == query.device):
            return None
        if ts.size_exprs(mask.shape) not in shapes or (mask.dim() == 3 and not _laid_out_contiguously(mask)):
            return None
        masks.append(mask)
    return masks


def _dense_strides(x: torch.Tensor) -> list | None:
    """The strides torch's ``empty_like`` gives a tensor that is not dense (GPT-2's queries, a
    piece of ``qkv.split``): dense, its dims in the order of ``x``'s strides (ATen's
    ``infer_dense_strides``), for strides that are distinct at the traced values and no dim of
    size 1 (where torch's comparisons would tie); else ``None``."""
    hints = [ts.size_hint(stride) for stride in x.stride()]
    if None in hints or 0 in hints or len(set(hints)) < len(hints) or any(ts.size_hint(s) == 1 for s in x.shape):
        return None
    strides: list[Any] = [None] * x.dim()
    inner: Any = 1
    for dim in sorted(range(x.dim()), key=hints.__getitem__):
        strides[dim] = inner
        inner = inner * x.shape[dim]
    return strides


def _new_strided(like: torch.Tensor, strides: list, tensors: Sequence[Any]) -> Maker:
    """A new tensor of ``like``'s sizes, dtype and fake device with these dense strides, distinct
    at the traced values (:func:`_dense_strides`); under autograd, not a leaf. Without grad, it
    is a contiguous blank of the sizes in the strides' order (:func:`_blank`) seen through these
    strides (a new ``empty_strided`` on symbolic sizes costs 1.5-2.5 ms, this ~0.25)."""
    sizes, strides = [ts.replaced(s) for s in like.shape], [ts.replaced(s) for s in strides]
    if not _needs_grad(tensors):
        outward = [sizes[d] for d in sorted(range(len(sizes)), key=lambda d: -ts.size_hint(strides[d]))]
        return lambda *args, **kwargs: ts.strided_alias(_blank(outward, like, like.dtype), sizes, strides, 0)

    def make(*args: Any, **kwargs: Any) -> torch.Tensor:
        return torch.empty_strided(sizes, strides, dtype=like.dtype, device=like.device).requires_grad_().clone()

    return make


def _laid_out_contiguously(t: torch.Tensor) -> bool:
    """A fake tensor whose strides are, as written, those of a contiguous tensor of its sizes
    (also at dims of size 1, whose strides torch's ``is_contiguous`` does not look at), or those
    torch writes for one (:func:`_torchs_contiguous`)."""
    return ts.size_exprs(t.stride()) == tuple(_contiguous_strides(ts.size_exprs(t.shape))) or _torchs_contiguous(t)


_KINDS = {"bool": lambda d: d == torch.bool, "float": lambda d: d.is_floating_point,
          "int": lambda d: not d.is_floating_point and not d.is_complex and d != torch.bool}  # fmt: skip


def _keeps_dtype(number: Any, dtype: torch.dtype) -> bool:
    """Whether a Python number with a tensor of ``dtype`` leaves it that dtype (torch's promotion:
    an ``int`` to any number but bool, a ``float`` to floating dtypes, a ``bool`` to bool). A
    size (``torch.SymInt``: Swin's ``h_idx >= height - window``) is an ``int``: torch passes it to
    the op as a scalar, and no size of the output depends on it."""
    kind = type(number)
    if kind is bool:
        return dtype == torch.bool
    if kind in (int, torch.SymInt):
        return dtype != torch.bool and not dtype.is_complex
    return kind in (float, torch.SymFloat) and dtype.is_floating_point


def _pointwise(args: tuple, kwargs: dict, to: torch.dtype | None = None, kinds: str = "") -> Maker | None:
    """An elementwise op on tensors of one dtype (of ``kinds``, unless it makes ``to``) and numbers
    that keep it. Laid out contiguously (:func:`_laid_out_contiguously`), torch's output is a new
    contiguous tensor of their broadcast sizes (:func:`_broadcast`), in ``to`` or their dtype;
    else, in their dtype, it has the first operand's layout where that one decides it
    (:func:`_decides_layout`: ``q * cos`` on attention's transposed queries)."""
    if kwargs or not 1 <= len(args) <= 2:
        return None
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    fake = next((t for t in tensors if ts.is_fake(t)), None)  # a parameter (RMSNorm's weight * x) is read for its sizes
    if fake is None or not all(_weight(t) for t in tensors):
        return None
    first = tensors[0]
    if any(t.dtype != first.dtype or t.device != first.device for t in tensors):
        return None  # promotion, or devices torch checks
    if to is None and not any(_KINDS[kind](first.dtype) for kind in kinds.split()):
        return None
    if not all(isinstance(a, torch.Tensor) or _keeps_dtype(a, first.dtype) for a in args):
        return None
    shape = _broadcast(tensors)
    if shape is None:
        return None
    if all(_laid_out_contiguously(t) for t in tensors):
        return _new(shape, fake, tensors, dtype=to)
    if to is None and args[0] is first is fake and _decides_layout(first, shape):
        return _alias_of(first, tensors)
    return None


def _decides_layout(x: torch.Tensor, shape: list) -> bool:
    """Whether torch's elementwise output takes ``x``'s layout whatever the other operands' are:
    ``x`` comes first and has the output's sizes, none of them 1, and is dense (contiguous, or a
    permutation of contiguous, as written). Its strides are then distinct products of its sizes,
    each outer one a multiple of each inner one, so that the comparisons by which torch orders
    the output's dims (``compute_elementwise_output_logical_to_physical_perm``, operand by
    operand) are each decided by ``x``, statically, the first time."""
    if ts.size_exprs(x.shape) != ts.size_exprs(shape) or any(ts.size_hint(size) == 1 for size in x.shape):
        return False
    return _laid_out_contiguously(x) or _permuted_contiguous(x)


def _broadcast(tensors: Sequence[torch.Tensor]) -> list | None:
    """The sizes ``tensors`` broadcast to, where each dim, aligned from the right, is the same
    expression in each tensor or a literal 1 (a size equal to 1 only at the traced values, or two
    expressions that happen to be equal, are torch's question: a guard); else ``None``."""
    ndim = max(t.dim() for t in tensors)
    shape: list[Any] = [1] * ndim
    written: list[Any] = [1] * ndim
    for t in tensors:
        for at, (size, expr) in enumerate(zip(t.shape, ts.size_exprs(t.shape)), start=ndim - t.dim()):
            if expr == 1:
                continue
            if not isinstance(expr, int) and ts.size_hint(size) == 1:
                return None
            if written[at] == 1:
                shape[at], written[at] = size, expr
            elif written[at] != expr:
                return None
    return shape


def _where(args: tuple, kwargs: dict) -> Maker | None:
    """``torch.where(mask, x, y)``: a bool mask; ``x`` and ``y`` tensors of one dtype, or one a
    number that keeps the other's dtype (``torch.finfo(x.dtype).min``); all laid out
    contiguously and broadcasting as written (:func:`_pointwise`)."""
    if kwargs or len(args) != 3:
        return None  # torch.where(mask) is the indices where it is true: data
    mask, x, y = args
    if not (isinstance(mask, torch.Tensor) and mask.dtype == torch.bool):
        return None
    values = [t for t in (x, y) if isinstance(t, torch.Tensor)]
    if not values or not all(_viewable(t) and _laid_out_contiguously(t) for t in (mask, *values)):
        return None
    dtype = values[0].dtype
    if any(t.dtype != dtype or t.device != mask.device for t in values):
        return None
    if not all(isinstance(v, torch.Tensor) or _keeps_dtype(v, dtype) for v in (x, y)):
        return None
    shape = _broadcast([mask, *values])
    return None if shape is None else _new(shape, values[0], [mask, *values])


def _masked_fill(args: tuple, kwargs: dict) -> Maker | None:
    """``x.masked_fill(mask, value)`` with a bool mask and a number that keeps ``x``'s dtype:
    torch's output is a contiguous copy of ``x`` broadcast with the mask."""
    if kwargs or len(args) != 3:
        return None
    x, mask, value = args
    if not (isinstance(mask, torch.Tensor) and mask.dtype == torch.bool and isinstance(x, torch.Tensor)):
        return None
    if not _keeps_dtype(value, x.dtype) or mask.device != x.device:
        return None
    if not all(_viewable(t) and _laid_out_contiguously(t) for t in (x, mask)):
        return None
    shape = _broadcast([x, mask])
    return None if shape is None else _new(shape, x, [x, mask])


def _arange(args: tuple, kwargs: dict) -> Maker | None:
    """``torch.arange(end)``, ``arange(start, end[, step])`` of ints, with ``dtype=``/``device=``:
    a new 1-d tensor of ``len(range(start, end, step))`` numbers, or of ``end`` numbers for a
    size from 0 by 1 (``torch.arange(seq_length)``: torch's length, ``(end - 0 + 1 - 1)//1``, is
    ``end``), with torch's check ``end >= 0`` (statically true for one dim's symbol, whose range
    starts at 2: not asked). A symbolic start or step, floats and ``requires_grad=`` are torch's."""
    names = ("start", "end", "step")
    if len(args) > 3 or set(kwargs) - {*names, "dtype", "device"}:
        return None
    given = dict(zip(("end",) if len(args) == 1 else names, args)) | {k: kwargs[k] for k in names if k in kwargs}
    start, end, step = given.get("start", 0), given.get("end"), given.get("step", 1)
    if not all(type(v) is int or isinstance(v, torch.SymInt) for v in (start, end, step)):
        return None
    written = [ts.size_expr(v) for v in (start, end, step)]
    if all(isinstance(w, int) for w in written):
        if written[2] == 0 or (written[1] - written[0]) * written[2] < 0:
            return None  # torch raises
        length: Any = len(range(*written))
    elif written[0] == 0 and written[2] == 1 and not ts.has_unbacked(written[1]):
        length = end
    else:
        return None
    dtype, device = kwargs.get("dtype") or torch.int64, kwargs.get("device")
    if not isinstance(dtype, torch.dtype) or not (device is None or isinstance(device, torch.device)):
        return None
    shape = [ts.replaced(length)]
    made = lambda *args, **kwargs: torch.empty(shape, dtype=dtype, device=device)  # noqa: E731
    if isinstance(written[1], (int, sympy.Symbol)):
        return made
    return _checked(
        lambda: torch._check(end >= 0, lambda: "upper bound and lower bound inconsistent with step sign"),
        made,
    )


def _made_like(count: int, args: tuple, kwargs: dict) -> Maker | None:
    """``torch.zeros_like(x)``, ``full_like(x, value)`` (a number), with at most ``dtype=``: a new
    tensor of ``x``'s sizes, laid out contiguously as ``x`` is, needing no grad."""
    if len(args) != count or set(kwargs) - {"dtype"} or not _viewable(args[0]) or not _laid_out_contiguously(args[0]):
        return None
    if count == 2 and type(args[1]) not in (int, float, bool):
        return None
    dtype = kwargs.get("dtype")
    if dtype is not None and not isinstance(dtype, torch.dtype):
        return None
    return _new(list(args[0].shape), args[0], (), dtype=dtype)


def _made_new(count: int, args: tuple, kwargs: dict) -> Maker | None:
    """``x.new_ones(sizes)``, ``new_full(sizes, value)``, with at most ``dtype=``: a new contiguous
    tensor of the sizes given (ints or ``x``'s own sizes), on ``x``'s device, needing no grad."""
    if len(args) != count or set(kwargs) - {"dtype"} or not _viewable(args[0]):
        return None
    sizes = args[1]
    if type(sizes) not in (tuple, list, torch.Size) or not all(isinstance(s, (int, torch.SymInt)) for s in sizes):
        return None
    if any(isinstance(ts.size_expr(s), int) and ts.size_expr(s) < 0 for s in sizes):
        return None  # torch raises
    if count == 3 and type(args[2]) not in (int, float, bool):
        return None
    dtype = kwargs.get("dtype")
    if dtype is not None and not isinstance(dtype, torch.dtype):
        return None
    return _new(list(sizes), args[0], (), dtype=dtype)


def _converted(func: Callable, args: tuple, kwargs: dict) -> Maker | None:
    """``x.to(dtype)``, ``x.to(device)``, ``x.to(device, dtype)``, ``x.to(other)``, ``x.float()``,
    ``x.type_as(other)``: ``x`` itself when its dtype and device are already those (as torch
    returns it), else, on the same device, a new contiguous tensor of ``x``'s sizes in the new
    dtype for ``x`` laid out contiguously. ``copy=True``, ``memory_format=`` and a move to
    another device run in torch."""
    x = args[0]
    if not _viewable(x):
        return None
    dtype, device = CONVERSIONS[func], x.device
    if func is _T.type_as:
        if len(args) != 2 or kwargs or not isinstance(args[1], torch.Tensor) or args[1].device != x.device:
            return None  # type_as also moves x to the other's device
        dtype = args[1].dtype
    elif func is _T.to:
        if set(kwargs) - {"dtype", "device", "non_blocking"} or kwargs.get("non_blocking") not in (None, False):
            return None
        targets = [*args[1:], *(kwargs[k] for k in ("device", "dtype") if k in kwargs)]
        dtype = x.dtype
        for target in targets:
            if isinstance(target, torch.dtype):
                dtype = target
            elif isinstance(target, torch.device):
                device = target
            elif type(target) is str and target in ("cpu", "meta"):
                device = torch.device(target)
            elif isinstance(target, torch.Tensor) and len(targets) == 1:
                dtype, device = target.dtype, target.device
            elif target is not None or len(targets) == 1:
                return None  # non_blocking or copy given by position, or something torch parses
    elif len(args) != 1 or kwargs:
        return None
    if device.type != x.device.type or (device.index is not None and device != x.device):
        return None  # a move to another device: torch's
    if dtype == x.dtype:
        return _itself(x)
    if not _laid_out_contiguously(x):
        return None  # torch's copy keeps a dense layout: strides it computes
    return _new(list(x.shape), x, (x,), dtype=dtype)


# --- 1-d pools, torch's contiguous strides, symbolic input channels --------------------------------


POOLS_1D: frozenset[Callable] = frozenset({F.max_pool1d, F.avg_pool1d})
MAX_POOL_1D_ARGUMENTS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
AVG_POOL_1D_ARGUMENTS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")


def _pool_1d(func: Callable, args: tuple, kwargs: dict) -> Maker | None:
    """``F.max_pool1d(x, kernel_size, stride, padding, dilation, ceil_mode)`` (no indices) and
    ``F.avg_pool1d(x, kernel_size, stride, padding, ceil_mode, count_include_pad)`` of a contiguous
    3-d floating ``x``: the sizes torch's fake op computes (:func:`ts.pool1d_output_size`), with its
    guards: ``max_pool1d`` makes the input's length an int (a guard that fixes its expression:
    ``Eq(L//16 - 4, 58)`` for L = 1000, or the dim itself when that is one symbol), and a size argument that
    is a SymInt (``F.avg_pool1d(x, x.shape[-1])``) is made an int as torch's argument parser
    does. Each size argument is an int or one (``stride`` also ``None`` or ``[]``: the kernel's)."""
    maximum = func is F.max_pool1d
    names = MAX_POOL_1D_ARGUMENTS if maximum else AVG_POOL_1D_ARGUMENTS
    if len(args) > len(names) + 1 or set(kwargs) - set(names[len(args) - 1 :]):
        return None
    given = dict(zip(names, args[1:])) | kwargs
    x = args[0]
    if not _plain(x) or x.dim() != 3 or "kernel_size" not in given or given.get("return_indices"):
        return None
    ceil_mode, count_include_pad = given.get("ceil_mode", False), given.get("count_include_pad", True)
    if type(ceil_mode) is not bool or type(count_include_pad) is not bool:
        return None
    stride = given.get("stride")
    sizes = [_one_size(given["kernel_size"]), None if stride in (None, []) else _one_size(stride),
             _one_size(given.get("padding", 0)), _one_size(given.get("dilation", 1))]  # fmt: skip
    if any(size is None for i, size in enumerate(sizes) if i != 1 or stride not in (None, [])):
        return None
    if any(isinstance(size, torch.SymInt) and not isinstance(ts.size_hint(size), int) for size in sizes):
        return None

    def output_size() -> list:
        kernel, step, padding, dilation = (None if size is None else int(size) for size in sizes)  # the parser's ints
        assert kernel is not None and padding is not None and dilation is not None
        return ts.pool1d_output_size(x, kernel, kernel if step is None else step, padding, dilation, ceil_mode,
                                     fixes_length=maximum)  # fmt: skip

    return _by_torchs_formula(output_size, x, (x,))


def _one_size(value: Any) -> Any:
    """A 1-d pool's size argument: an int or a SymInt, alone or in a list or tuple of one; else ``None``."""
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else None
    return value if type(value) is int or isinstance(value, torch.SymInt) else None


def _torchs_contiguous(t: torch.Tensor) -> bool:
    """Whether ``t``'s strides are, as written, those torch writes for a new contiguous tensor of
    its sizes with ``Max(1, size)`` inside them (``make_contiguous_strides_for``: a torch op's
    output whose sizes torch cannot prove to be at least 1, ``48*Max(1, H//4)``)."""
    strides = ts.size_exprs(t.stride())
    if not any(isinstance(s, sympy.Expr) and s.has(ts.sympy_functions.Max) for s in strides):
        return False
    return strides == ts.contiguous_stride_exprs(t.shape)


def _torchs_channels_last(x: torch.Tensor) -> bool:
    """Whether a 4-d ``x`` is, as written, a ``permute(0, 3, 1, 2)`` of a tensor with the strides
    torch writes for a new contiguous ``(B, H, W, C)`` one (:func:`_torchs_contiguous`: ConvNeXt's
    blocks, channels-last after their ``Linear`` layers)."""
    strides = ts.size_exprs(x.stride())
    if x.dim() != 4 or not any(isinstance(s, sympy.Expr) and s.has(ts.sympy_functions.Max) for s in strides):
        return False
    batch, channels, height, width = x.shape
    return (strides[0], strides[2], strides[3], strides[1]) == ts.contiguous_stride_exprs([batch, height, width,
                                                                                          channels])  # fmt: skip


def _conv_on_symbolic_channels(spatial: int, args: tuple, kwargs: dict) -> Maker | None:
    """A convolution (not transposed) of a batched contiguous ``x`` whose input channels are
    symbolic (the first one of an image model, ``C``) and, in this run, the weight's times
    ``groups``: the sizes torch's meta function computes (:func:`ts.conv_output_size`), whose
    channel check is the guard torch's check makes (``Eq(C, 3)``: ``C`` is replaced by 3, a
    specialisation of this op), then its formula; a new contiguous tensor."""
    x, weight = args[0], _argument(args, kwargs, 1, "weight")
    bias = _argument(args, kwargs, 2, "bias")
    if not _plain(x) or x.dim() != spatial + 2 or not isinstance(weight, torch.Tensor) or not weight.is_contiguous():
        return None
    tensors = _with_weights(x, weight, bias)
    kernel = ts.size_exprs(weight.shape)
    groups = _argument(args, kwargs, 6, "groups", default=1)
    if tensors is None or weight.dim() != spatial + 2 or not all(isinstance(k, int) for k in kernel):
        return None
    if type(groups) is not int or _concrete(x.shape[1]) or ts.size_hint(x.shape[1]) != kernel[1] * groups:
        return None
    stride = _per_dim(_argument(args, kwargs, 3, "stride", default=1), spatial)
    dilation = _per_dim(_argument(args, kwargs, 5, "dilation", default=1), spatial)
    padding = _argument(args, kwargs, 4, "padding", default=0)
    padding = [0] * spatial if padding == "valid" else _per_dim(padding, spatial)
    if stride is None or dilation is None or padding is None:
        return None  # "same" padding: torch's
    return _by_torchs_formula(lambda: ts.conv_output_size(x, weight, stride, padding, dilation, groups), x, tensors)



def _linear_on_symbolic_features(args: tuple, kwargs: dict) -> Maker | None:
    """``F.linear(x, weight, bias)`` whose input features are symbolic (a text encoder's states
    ``(B, S, D)`` into a cross-attention's ``Linear(32, ...)``) and, in this run, the weight's:
    torch's matrix product checks them against the weight's (``Eq(D, 32)``: ``D`` is replaced by
    32, a specialisation of this op), here by the same comparison, in the op; then the input's
    other sizes and the weight's out features, in a new contiguous tensor. An input of 3 or more
    dims may be a transpose or permute of a dense tensor (MLP-Mixer's token mixing, ``(B, D, N)``
    into ``Linear(64, ...)``: ``Eq(N, 64)``), dense at the traced values (:func:`_dense`): torch's
    product copies it into a contiguous one or multiplies it batched, and its output is a new
    contiguous tensor either way; its questions about the copy and the fold fix nothing."""
    x = args[0]
    weight = _argument(args, kwargs, 1, "weight")
    bias = _argument(args, kwargs, 2, "bias")
    if len(args) > 3 or set(kwargs) - {"weight", "bias"}:
        return None
    if not _plain(x, contiguous=False) or x.dim() < 1 or not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        return None
    if not _is_contiguous(x) and not (x.dim() >= 3 and _dense(x)):
        return None
    tensors = _with_weights(x, weight, bias)
    features = ts.size_exprs(weight.shape)
    if tensors is None or not all(isinstance(f, int) for f in features) or _concrete(x.shape[-1]):
        return None
    if ts.size_hint(x.shape[-1]) != features[1]:
        return None
    if bias is not None and (bias.dim() != 1 or ts.size_exprs(bias.shape) != (features[0],)):
        return None

    def output_size() -> list:
        torch._check(x.shape[-1] == features[1], lambda: "linear: the input's features are not the weight's")
        return [*x.shape[:-1], features[0]]

    return _by_torchs_formula(output_size, x, tensors)


def _dense_but_for_ones(x: torch.Tensor) -> bool:
    """Whether ``x``'s strides, as written, are a contiguous tensor's with its dims permuted once
    its dims of literal size 1 are left out (one head's queries ``(B, 1, N, d)`` viewed from ``(B,
    N, 1, d)``: strides ``(d*N, d, d, 1)``): non-overlapping and dense, whose strides torch's
    ``empty_like`` keeps as they are, the size-1 dims' too."""
    sizes, strides = ts.size_exprs(x.shape), ts.size_exprs(x.stride())
    return _dense_in_some_order(sizes, strides, {d for d in range(len(sizes)) if sizes[d] != 1})


def _channels_last_cat(args: tuple, kwargs: dict) -> Maker | None:
    """``torch.cat`` of channels-last image batches (:func:`_image_layout`: a diffusers U-Net's
    skip connections after its attention blocks) along a dim of concrete size in each, their
    other sizes the same as written: torch's output takes the layout every operand suggests
    (``cat_compute_output_memory_format``), a new channels-last tensor of the first's sizes with
    that dim summed. Operands laid out otherwise, or sizes written differently (a guard), are
    torch's."""
    tensors = _argument(args, kwargs, 0, "tensors")
    dim = _argument(args, kwargs, 1, "dim", default=0)
    if set(kwargs) - {"tensors", "dim"} or type(tensors) not in (list, tuple) or len(tensors) < 2 or type(dim) is not int:
        return None
    if not all(isinstance(t, torch.Tensor) and _plain(t, contiguous=False) and t.dim() == 4 for t in tensors):
        return None
    first = tensors[0]
    if any(t.dtype != first.dtype or t.device != first.device for t in tensors) or not -4 <= dim < 4:
        return None
    dim %= 4
    sizes = [ts.size_exprs(t.shape) for t in tensors]
    along = [s[dim] for s in sizes]
    if not all(isinstance(size, int) for size in along):
        return None
    if any(s[:dim] + s[dim + 1 :] != sizes[0][:dim] + sizes[0][dim + 1 :] for s in sizes):
        return None
    if not all(not _is_contiguous(t) and _image_layout(t) == torch.channels_last for t in tensors):
        return None
    shape = list(first.shape)
    shape[dim] = sum(along)
    return _new(shape, first, tensors, memory_format=torch.channels_last)


# --- conditions and outputs --------------------------------------------------------------------


def _plain(x: Any, contiguous: bool = True) -> bool:
    """A fake floating tensor holding no constant (and contiguous, unless asked not to be)."""
    return _viewable(x) and x.dtype.is_floating_point and (not contiguous or _is_contiguous(x))


def _is_contiguous(x: torch.Tensor) -> bool:
    """``x.is_contiguous()``, torch's answer, read from the sizes and strides as written and at the
    traced values where torch's question would fix nothing. A fake tensor with symbolic sizes
    computes its contiguity the first time it is asked, each dim a question to the ``ShapeEnv``
    (0.3-2 ms on nested floor divisions: a fifth of a SegFormer's pass, asked by these rules of
    every view's and norm's input); its answer is the truth at the traced values, and its guards
    only say so: a stride written as the contiguous one is it (no question), one that differs
    there is not (at most ``Ne``, which fixes nothing), one written as the same polynomial is it
    (torch's static evaluation expands them). Torch answers where a size is 1 or 0 at the traced
    values, or a stride equals the contiguous one only there (``Max(1, H//4)`` for ``H//4``: its
    ``Eq`` could narrow a range)."""
    sizes, strides = x.shape, x.stride()
    if not any(isinstance(s, torch.SymInt) for s in (*sizes, *strides)):
        return x.is_contiguous()
    expected: Any = 1
    expected_value = 1
    for size, stride, size_expr, stride_expr in zip(reversed(sizes), reversed(strides), reversed(ts.size_exprs(sizes)),
                                                    reversed(ts.size_exprs(strides))):  # fmt: skip
        value, stride_value = ts.size_hint(size), ts.size_hint(stride)
        if value is None or stride_value is None or value == 0 or (value == 1 and isinstance(size, torch.SymInt)):
            return x.is_contiguous()
        if value == 1:
            continue
        if stride_expr != expected:
            if stride_value != expected_value:
                return False
            if not _same_polynomial(stride_expr, expected):
                return x.is_contiguous()
        expected = expected * size_expr
        expected_value *= value
    return True


def _same_polynomial(a: Any, b: Any) -> bool:
    """Whether two sizes written differently are the same polynomial of the same terms
    (``(H + 1)*(32*W + 32)`` and ``32*(H + 1)*(W + 1)``: a reshape's sizes against torch's
    strides): torch's static evaluation decides them equal, no guard (:func:`_image_layout`)."""
    return sympy.expand(a - b) == 0


def _permuted_contiguous(x: torch.Tensor) -> bool:
    """Whether ``x``'s strides, as written, are a contiguous tensor's with its dims permuted (a
    transpose or permute of one: dense, no overlap), no dim of size 1 (whose stride is anything):
    the layout elementwise ops and batch and group norms keep."""
    sizes, strides = ts.size_exprs(x.shape), ts.size_exprs(x.stride())
    return all(size != 1 for size in sizes) and _dense_in_some_order(sizes, strides, set(range(len(sizes))))


def _dense_in_some_order(sizes: tuple, strides: tuple, dims: set[int]) -> bool:
    """Whether the strides of ``dims``, as written, are a contiguous tensor's of their sizes in
    some order of the dims: innermost stride 1, each next one the previous times its size."""
    expected = 1
    while dims:
        inner = next((d for d in dims if strides[d] == expected), None)
        if inner is None:
            return False
        dims.discard(inner)
        expected = expected * sizes[inner]
    return True


def _sliced(x: torch.Tensor) -> bool:
    """Whether ``x``'s strides, as written, are a contiguous tensor's cut along dims of concrete
    size (``a, b = x.chunk(2, -1)``, ``x.split(...)``, ``x[:, :n]``, ``scale[:, None]`` of a
    chunk): dense in its last dim, and each dim's stride the next one's times that dim's size in
    the tensor it was cut from (its own, or for a concrete dim a larger number). Dims of size 1
    take any stride."""
    inner: tuple[Any, Any] | None = None  # the stride and size of the next dim to the right, not 1
    for size, stride in zip(reversed(ts.size_exprs(x.shape)), reversed(ts.size_exprs(x.stride()))):
        if size == 1:
            continue
        if inner is None:
            if stride != 1:
                return False
        elif stride != inner[0] * inner[1]:
            ratio = sympy.sympify(stride) / inner[0]
            if not (isinstance(inner[1], int) and ratio.is_Integer and int(ratio) > inner[1]):
                return False
        inner = stride, size
    return True


def _ordered_outward(x: torch.Tensor) -> bool:
    """Whether ``x``'s strides grow strictly from its last dim outward at the traced values, no
    dim of size 1 there (``x[:, :, :-1]`` of a conv output, a cut along a symbolic dim): torch
    orders an elementwise output's dims by its input's strides, and whether it decides each
    comparison statically or by a guard, or leaves it undecided, it never swaps two dims, so
    the output is contiguous."""
    sizes, strides = [ts.size_hint(s) for s in x.shape], [ts.size_hint(s) for s in x.stride()]
    if None in sizes or None in strides or any(size == 1 for size in sizes):
        return False
    return all(stride > 0 for stride in strides) and all(outer > inner for outer, inner in zip(strides, strides[1:]))


def _channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` is an image batch in torch's channels-last layout, as written: the layout
    torch's norms keep (another permutation of their input gets a contiguous output)."""
    if x.dim() != 4 or not _permuted_contiguous(x):
        return False
    _, channels, height, width = ts.size_exprs(x.shape)
    strides = ts.size_exprs(x.stride())
    return strides[1] == 1 and strides[3] == channels and strides[2] == channels * width


def _same_layout(x: torch.Tensor, other: torch.Tensor) -> bool:
    """The same sizes and strides, as written."""
    return ts.size_exprs(x.shape) == ts.size_exprs(other.shape) and ts.size_exprs(x.stride()) == ts.size_exprs(
        other.stride())


def _constant_free(t: torch.Tensor) -> bool:
    return ts.is_fake(t) and t.constant is None


def _weight(t: torch.Tensor) -> bool:
    """A tensor an op may be carried with: a fake holding no constant, or a real tensor (a
    parameter or a buffer, of concrete sizes: the replay makes its fake copy only for an op
    torch runs, and a carried op reads no more than its sizes, dtype, device and
    ``requires_grad``)."""
    return t.constant is None if ts.is_fake(t) else True


def _concrete(size: Any) -> bool:
    return isinstance(ts.size_expr(size), int)


def _needs_grad(tensors: Sequence[Any]) -> bool:
    return torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


def _itself(x: torch.Tensor) -> Maker:
    """An in-place op: torch returns its first operand."""
    return lambda *args, **kwargs: x


def _alias_of(x: torch.Tensor, tensors: Sequence[Any]) -> Maker | None:
    """A new tensor with ``x``'s sizes and strides; under autograd, a view of ``x`` (a leaf
    would refuse the in-place ops torch's output allows, so an op on a leaf runs in torch)."""
    if not _needs_grad(tensors):
        return lambda *args, **kwargs: ts.alias(x)
    if not x.requires_grad or x.is_leaf:
        return None
    return lambda *args, **kwargs: torch.ops.aten.alias(x)


def _new(shape: list, like: torch.Tensor, tensors: Sequence[Any], dtype: torch.dtype | None = None,
         memory_format: torch.memory_format = torch.contiguous_format) -> Maker:  # fmt: skip
    """A new tensor of ``shape`` on ``like``'s fake device, in ``like``'s dtype unless given, laid
    out contiguously (or channels-last, for an image batch); under autograd, not a leaf."""
    shape = [ts.replaced(size) for size in shape]  # the symbols torch's output would have now
    dtype = dtype or like.dtype
    if not _needs_grad(tensors) or not (dtype.is_floating_point or dtype.is_complex):  # a mask needs no grad
        return lambda *args, **kwargs: _blank(shape, like, dtype, memory_format)

    def make(*args: Any, **kwargs: Any) -> torch.Tensor:
        mode = like.fake_mode
        anchor = ts.scratch(mode).get("grad_anchor")
        if anchor is None:
            anchor = ts.scratch(mode)["grad_anchor"] = ts.empty(mode, [], torch.float32, like.device).requires_grad_()
        return _Made.apply(anchor, mode, shape, dtype, like.device, memory_format)

    return make


class _Made(torch.autograd.Function):
    """A new fake tensor (:func:`ts.empty`) made as an output of an autograd graph (of ``anchor``,
    a fake leaf kept per fake run): not a leaf and not a view, so that in-place ops are allowed on
    it as on torch's own output, and laid out as asked. Cloning a new leaf made the same, but a
    clone works out its strides from the symbolic sizes through sympy (30 ms of a first pass)."""

    @staticmethod
    def forward(ctx: Any, anchor: torch.Tensor, mode: Any, shape: list, dtype: torch.dtype, device: torch.device,
                memory_format: torch.memory_format) -> torch.Tensor:  # fmt: skip
        return ts.empty(mode, shape, dtype, device, memory_format)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        return (None,) * 6


def _blank(shape: list, like: torch.Tensor, dtype: torch.dtype,
           memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:  # fmt: skip
    """A fake tensor of ``shape`` in ``dtype`` on ``like``'s device, laid out in ``memory_format``:
    an alias of one made once per fake run and kept apart (a new ``torch.empty`` on symbolic sizes
    costs ~0.6 ms of torch's symbolic arithmetic for its strides; an alias ~16 µs)."""
    made = ts.scratch(like.fake_mode).setdefault("blanks", {})  # (sizes as written, dtype, device, layout) -> blank
    key = (ts.size_exprs(shape), dtype, like.device, memory_format)
    found = made.get(key)
    if found is None:
        found = made[key] = ts.empty(like.fake_mode, shape, dtype, like.device, memory_format)
    return ts.alias(found)


def _with_weights(x: torch.Tensor, weight: Any, bias: Any) -> tuple | None:
    """``(x, weight[, bias])`` when the weights (:func:`_weight`) are in ``x``'s dtype and on its
    device (another dtype: torch's promotion or error decides), else ``None``."""
    tensors = (x, weight) if bias is None else (x, weight, bias)
    if all(isinstance(t, torch.Tensor) and _weight(t) and t.dtype == x.dtype and t.device == x.device
           for t in tensors):  # fmt: skip
        return tensors
    return None


def _tensors(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The tensor arguments (a norm's input, weights and statistics)."""
    return [value for value in (*args, *kwargs.values()) if isinstance(value, torch.Tensor)]


def _argument(args: tuple, kwargs: dict, position: int, name: str, default: Any = None) -> Any:
    if len(args) > position:
        return args[position]
    return kwargs.get(name, default)


_RULES = _rule_table()  # after the rules it names
