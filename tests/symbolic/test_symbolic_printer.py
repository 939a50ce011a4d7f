"""Size expressions print the way the seeds write them: Python-valid, no redundant brackets."""

from __future__ import annotations

import pytest
import sympy

from shapetrace._private.torch_symbolic import FloorDiv, sympy_functions
from shapetrace.symbolic.dims import symbol
from shapetrace.symbolic.printer import expr_text, renamed_text, shape_text

B, C, D, H, W = (symbol(n) for n in "BCDHW")


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (H * W, "H*W"),
        (FloorDiv(H, 32) * FloorDiv(W, 32) + 1, "(H//32)*(W//32) + 1"),
        (FloorDiv(H - 1, 2) + 1, "(H - 1)//2 + 1"),
        (FloorDiv(H, 2) - 2, "H//2 - 2"),
        (3 * D, "3*D"),
        (4 - H, "4 - H"),
        (3 * W - 2 * H, "3*W - 2*H"),
        (FloorDiv(H * W, 2), "(H*W)//2"),
        (FloorDiv(FloorDiv(H, 32), 2) + FloorDiv(W, 7), "H//64 + W//7"),
        (FloorDiv(H, 32) ** 2, "(H//32)**2"),
        (B * C * H * W, "B*C*H*W"),
        (sympy.Max(H, W), "max(H, W)"),
        (sympy.Mod(H, 2), "H % 2"),
        (sympy.Integer(7), "7"),
    ],
)
def test_expressions_print_like_the_seeds(expr, text):
    assert expr_text(expr) == text
    # the text is Python: evaluating it at some sizes gives the expression's value
    sizes = {"B": 3, "C": 5, "D": 9, "H": 130, "W": 66}
    value = eval(text, {"max": max}, sizes)  # noqa: S307 - our own printed text
    assert value == int(sympy.sympify(expr).xreplace({symbol(k): v for k, v in sizes.items()}))


def test_no_torch_brackets_survive():
    expr = FloorDiv(H, 32) * FloorDiv(W, 32) + 1
    assert "((" in str(expr) and "((" not in expr_text(expr)


def test_renamed_text_is_the_text_with_each_symbol_renamed_and_remembered():
    """A size printed with generated names replaced (``s3`` written ``T``), as ``expr_text`` with
    that namer writes it; the same expression and names again is the same text object."""
    generated = symbol("d0")
    expr = FloorDiv(H - 1, 2) + 1 + 3 * generated
    aliases = (("d0", "T"),)
    renamed_text.cache_clear()
    text = renamed_text(expr, aliases)
    assert text == expr_text(expr, lambda s: dict(aliases).get(s.name, s.name)) == "3*T + (H - 1)//2 + 1"
    assert renamed_text(expr) == expr_text(expr) == "3*d0 + (H - 1)//2 + 1"
    assert renamed_text(expr, aliases) is text and renamed_text.cache_info().hits == 1


def test_shape_text_keeps_the_comma_of_one_dim():
    assert shape_text(["T"]) == "(T,)"
    assert shape_text(["B", "C"]) == "(B, C)"
    assert shape_text([]) == "()"


# --- divisible sizes: `H/2` for `(H - 1)//2 + 1` when 2 divides H -----------------------------


@pytest.mark.parametrize(
    ("expr", "values", "text", "divisors"),
    [
        (FloorDiv(H - 1, 2) + 1, {H: 128}, "H/2", {H: 2}),  # a stride-2 3x3 conv
        (4 * FloorDiv(H, 4), {H: 128}, "H", {H: 4}),  # patchify, then unpatchify
        (FloorDiv(H, 4) * FloorDiv(W, 4), {H: 32, W: 64}, "H*W/16", {H: 4, W: 4}),
        (FloorDiv(FloorDiv(H - 4, 2) - 4, 2), {H: 28}, "H/4 - 3", {H: 4}),  # nested floors multiply
        (FloorDiv(3 * H, 4), {H: 8}, "3*H/4", {H: 4}),
        (FloorDiv(H, 32), {H: 28}, None, {H: 4}),  # 28 is not divisible by 32: stays H//32
        (FloorDiv(H - 1, 2) + 1, {H: 127}, None, {}),  # odd: nothing assumed
        (FloorDiv(H + 2 * W - 1, 4), {H: 32, W: 6}, "H/4 + W/2 - 1", {H: 4, W: 2}),  # the constant rounds down
        (sympy_functions.CeilDiv(H, 4), {H: 128}, "H/4", {H: 4}),
        (H - 4 * FloorDiv(H, 4) + W, {H: 128, W: 8}, "W", {H: 4}),  # the remainder, as torch may write it
        (sympy_functions.PythonMod(H, 4) + W, {H: 128, W: 8}, "W", {H: 4}),
        (FloorDiv(sympy_functions.Max(1, H), 2), {H: 64}, "H/2", {H: 2}),  # sympy's floor decides a max
    ],
)
@pytest.mark.parametrize("form", ["torch's", "sympy's floor"])
def test_divisible_sizes_print_as_the_seeds_write_them(expr, values, text, divisors, form):
    """The same divisibility and text from torch's size expression and from its floor form."""
    from shapetrace.symbolic.printer import divided, divisors_for, floor_form

    written = expr if form == "torch's" else floor_form(expr)
    assert divisors_for([written], values) == divisors
    simpler = divided(written, divisors)
    assert (expr_text(simpler) if simpler is not None else None) == text
    if simpler is not None:  # equal to the exact expression wherever the divisors divide the sizes
        for scale in (1, 3, 10):
            point = {sym: d * scale for sym, d in divisors.items()}
            assert simpler.xreplace(point) == floor_form(expr).xreplace(point)
