"""Every private torch and jaxtyping API shapetrace uses, each behind one small module.

tests/private/ fails loudly when one of them moves.
"""
