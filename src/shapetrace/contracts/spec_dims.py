"""Reading dim names out of a jaxtyping spec, position by position (for the symbolic pass)."""

from __future__ import annotations


def dim_names(spec: str, ndim: int) -> tuple[str | None, ...]:
    """The name of each of the ``ndim`` dims a tensor matching ``spec`` has, ``None`` where the
    spec gives no single name: ``dim_names("B C H W", 4) == ("B", "C", "H", "W")``.

    ``#B`` and ``_B`` name ``B``; ``N=16`` names ``N``; fixed sizes (``3``), expressions
    (``H*W``) and the dims a ``*batch`` or ``...`` stands for are ``None``. Raises
    ``ValueError`` when ``ndim`` does not fit the spec.
    """
    tokens = spec.split()
    variadic = [i for i, token in enumerate(tokens) if is_variadic(token)]
    fixed = len(tokens) - len(variadic)
    if len(variadic) > 1 or (ndim != fixed if not variadic else ndim < fixed):
        raise ValueError(f"a tensor with {ndim} dims does not match the spec {spec!r}")
    names: list[str | None] = []
    for i, token in enumerate(tokens):
        if variadic and i == variadic[0]:
            names.extend([None] * (ndim - fixed))
        else:
            names.append(_name(token))
    return tuple(names)


def is_variadic(token: str) -> bool:
    """Whether a token of a spec stands for any number of dims: ``...``, ``*batch``, ``#*batch``."""
    return token == "..." or token.lstrip("#_?").startswith("*")


def _name(token: str) -> str | None:
    name = token.lstrip("#_?")
    if "=" in name:
        name = name.split("=", 1)[0].lstrip("#_?")
    return name if name.isidentifier() else None
