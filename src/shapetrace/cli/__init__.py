"""The command line: ``shapetrace [options] SCRIPT [ARGS...]`` and ``python -m shapetrace``."""
