"""Every kind of planted bug in a seed-style script (scripts/, see planted_scripts.py): the
diagnosis is at the planted line, names the operand and the cause, gives the fix; a fix marked
checked, applied to a copy of the script, makes the copy run (in a subprocess) and, for a lint,
no longer lint."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from planted_scripts import CASES, Case, apply_edits, finding, traced

pytestmark = pytest.mark.filterwarnings("ignore:Using a target size:UserWarning")  # vae_mse_broadcast.py

RUNNER = textwrap.dedent("""\
    import contextlib, io, json, runpy, sys, warnings
    warnings.simplefilter("ignore")
    results = {}
    for path in sys.argv[1:]:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                runpy.run_path(path, run_name="__main__")
            results[path] = None
        except BaseException as error:
            results[path] = f"{type(error).__name__}: {error}"
    print("RESULTS " + json.dumps(results))
""")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Each case's diagnosis, and whether the copy with its edits applied ran (one subprocess
    for all copies) and, for a lint, was clean under a trace."""
    directory = tmp_path_factory.mktemp("fixed")
    found, copies = {}, {}
    for case in CASES:
        d = finding(case, traced(case.path))
        found[case.script] = d
        edits = [e for e in (d.edits if d else ()) if e.file == str(case.path)]
        if edits:
            copy = directory / case.path.name
            copy.write_text(apply_edits(case.path.read_text(), edits))
            copies[case.script] = copy
    runner = directory / "run_all.py"
    runner.write_text(RUNNER)
    done = subprocess.run([sys.executable, str(runner), *map(str, copies.values())], capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULTS "))
    errors = json.loads(line.removeprefix("RESULTS "))
    ran = {name: errors[str(copy)] for name, copy in copies.items()}
    clean = {
        case.script: not any(d.kind == case.kind for d in traced(copies[case.script], symbolic=False).diagnostics)
        for case in CASES
        if case.lint and case.script in copies and ran[case.script] is None
    }
    return found, ran, clean


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.script)
def test_planted_bug_is_explained_and_fixed(case: Case, outcomes):
    found, ran, clean = outcomes
    d = found[case.script]
    assert d is not None, f"no diagnosis for {case.script}"
    assert (d.kind, d.file, d.line) == (case.kind, str(case.path), case.line)
    assert d.severity == ("warning" if case.lint else "error")
    if case.operand is not None:
        named = [o.role for o in d.operands] if d.operands else []
        assert case.operand in named or f"`{case.operand}`" in d.message, (named, d.message)
    for words in case.cause:
        assert words in d.message, d.message
    assert case.fix in (d.fix or ""), d.fix
    assert d.edits, "the fix is code: it comes as edits of the source"
    assert ran.get(case.script, "not run") is None, ran.get(case.script)  # the fixed copy runs
    if case.lint:
        assert clean[case.script], "the fixed copy still lints"
    assert d.fix_checked is case.checked
    assert d.fix_label == ("Fix (checked)" if case.checked else "Suggestion")
