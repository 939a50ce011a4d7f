"""Symbolic shapes: dims named by the user, jaxtyping hints or the source, and every tensor's
shape as an expression over them (``(B, C, H*W)``), computed by torch's own symbolic shapes.

docs/symbolic.md describes the behaviour. This package is imported lazily: ``skeleton`` is the
only part the recorder uses while tracing; the pass itself (``engine``) runs when a trace is read.
"""
