"""The one thing pyproject.toml does not say: the recorder's optional C extension (docs/capture.md,
"A compiled hot path"). Kept here because setuptools still calls ``ext-modules`` in pyproject.toml
experimental. ``optional``: where it cannot be built (no C compiler) the install still succeeds
and traces use the pure-Python recorder, with the same results."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("shapetrace.capture._hotpath", sources=["src/shapetrace/capture/_hotpath.c"], optional=True),
    ]
)
