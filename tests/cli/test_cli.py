"""The command line: shapetrace [--json FILE] SCRIPT [ARGS...] and python -m shapetrace."""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import shapetrace
from shapetrace.cli.main import main

PACKAGE_DIR = Path(shapetrace.__file__).resolve().parent

GOOD = """\
import sys
import torch

x = torch.rand(2, 3)                  # (2, 3)
y = x.transpose(0, 1)                 # (3, 2)
print("argv", sys.argv[1:])
"""

FAILING = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = x.flatten(1)              # (B, 12)
        return self.fc(x)             # fails: 12 != 8


Net()(torch.rand(2, 3, 4))
"""


def torch_message(run) -> str:
    """The message torch's own error has, untraced (its wording changes between releases)."""
    with pytest.raises(RuntimeError) as raised:
        run()
    return str(raised.value)


@pytest.fixture
def script(tmp_path):
    def write(source: str, name: str = "script.py"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")


def test_runs_the_script_with_its_argv_and_prints_the_table(script, capsys):
    path = script(GOOD)
    assert main([str(path), "--flag", "value"]) == 0
    out = capsys.readouterr().out
    assert "argv ['--flag', 'value']" in out
    assert out.index("argv") < out.index("transpose")  # the script's output, then the table
    assert "(3, 2)" in out and "2 ops, 0 module calls in script.py" in out


def test_json_file(script, tmp_path, capsys):
    path = script(GOOD)
    target = tmp_path / "trace.json"
    assert main(["--json", str(target), str(path)]) == 0
    doc = json.loads(target.read_text())
    assert [op["op"] for op in doc["ops"]] == ["rand", "transpose"]
    assert doc["ops"][1]["line"] == 5


def test_exit_code_of_the_script(script, capsys):
    assert main([str(script("import sys\nsys.exit(3)\n"))]) == 3
    assert main([str(script("import sys\nsys.exit()\n"))]) == 0
    assert main([str(script("import sys\nsys.exit('stopped early')\n"))]) == 1
    assert "stopped early" in capsys.readouterr().err


def test_failing_script_prints_its_traceback_then_the_trace_and_exits_1(script, capsys):
    path = script(FAILING)
    assert main([str(path)]) == 1
    captured = capsys.readouterr()
    err_lines = captured.err.splitlines()
    assert err_lines[0] == "Traceback (most recent call last):"
    assert f'File "{path}", line 15, in <module>' in err_lines[1]
    frames = [Path(file) for file in re.findall(r'^  File "([^"]+)"', captured.err, re.MULTILINE)]
    assert frames[0] == path  # the script's own traceback: its frames, torch's, none of ours
    assert not [f for f in frames if f.name == "runpy.py" or f.resolve().is_relative_to(PACKAGE_DIR)]
    assert err_lines[-1] == f"RuntimeError: {torch_message(lambda: torch.nn.Linear(8, 4)(torch.rand(2, 12)))}"
    out = captured.out
    assert "flatten" in out and "(2, 12)" in out and "✗ raised" in out
    assert "✗ op 2 (linear) at script.py:12 raised RuntimeError" in out


def test_syntax_error_is_the_scripts_own_error(script, capsys):
    assert main([str(script("x = (\n"))]) == 1
    captured = capsys.readouterr()
    assert captured.err.rstrip().endswith("SyntaxError: '(' was never closed")
    assert "0 ops, 0 module calls" in captured.out


def test_missing_or_unreadable_script_is_one_clear_line_and_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "nope.py")]) == 2
    assert capsys.readouterr().err == f"shapetrace: {tmp_path / 'nope.py'}: no such file\n"
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith("is a directory, not a Python script")
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.py"
        locked.write_text("x = 1\n")
        locked.chmod(0)
        assert main([str(locked)]) == 2


def test_console_script_and_python_dash_m(examples):
    console_script = Path(sys.executable).parent / "shapetrace"  # the venv's bin need not be on PATH
    for command in ([str(console_script)], [sys.executable, "-m", "shapetrace"]):
        done = subprocess.run(
            [*command, str(examples.path("tokenize_image"))],
            capture_output=True, text=True, env={**os.environ, "COLUMNS": "160", "PATH": "/usr/bin:/bin"},
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "transpose" in done.stdout and "(B, H*W, C)" in done.stdout  # dims named from torch.rand(B, C, H, W)


def test_a_script_edited_between_two_runs_in_one_process_records_its_new_lines(script):
    from shapetrace.cli.runner import run_script

    path = script("import torch\nx = torch.rand(2, 3)\n")
    assert [op.code for op in run_script(path).trace.ops] == ["x = torch.rand(2, 3)"]
    path.write_text("import torch\nx = torch.ones(4, 5, 6)  # edited\n")
    second = run_script(path).trace
    assert [(op.op, op.code) for op in second.ops] == [("ones", "x = torch.ones(4, 5, 6)  # edited")]


LINTED = """\
import torch
from torch import nn


class Masked(nn.Module):
    def forward(self, att):
        mask = torch.ones(4, 4).tril()               # (4, 4)
        return att.masked_fill(mask == 0, 0.0)       # (2, 4, 4)


Masked()(torch.rand(2, 4, 4))
"""


@pytest.mark.parametrize(
    ("mode", "own_output"),
    [
        ("--annotate", "return att.masked_fill"),
        ("--check", "shapetrace --check:"),
        ("--write", "shapetrace --write:"),
    ],
)
def test_comment_modes_print_the_lints_after_their_own_output(script, capsys, mode, own_output):
    assert main([mode, str(script(LINTED))]) == 0
    out = capsys.readouterr().out
    assert out.index(own_output) < out.index("⚠ 1 device lint") < out.index("factory-without-device")
    assert "module calls in" not in out  # the table is not printed in these modes


def test_comment_modes_print_the_failure_panel_once_when_the_script_raised(script, capsys):
    assert main(["--check", str(script(FAILING))]) == 1
    captured = capsys.readouterr()
    assert captured.out.index("module calls in script.py") < captured.out.index("✗ matmul-shape")
    assert captured.out.count("✗ matmul-shape") == 1
    assert "shapetrace: --check skipped: the script raised" in captured.err


def test_no_script_says_what_to_pass(capsys):
    with pytest.raises(SystemExit) as stopped:
        main([])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "shapetrace: error: no script: give the Python script to run, then its arguments (shapetrace SCRIPT [ARGS...])"
    )
    assert "args" not in err.splitlines()[-1]


def test_a_fifo_as_the_script_is_one_line_and_exit_2_instead_of_waiting(tmp_path):
    fifo = tmp_path / "script.py"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "shapetrace", str(fifo)], capture_output=True, text=True, timeout=60
    )  # a reader blocked on the FIFO would wait until the timeout
    assert done.returncode == 2
    assert done.stderr == f"shapetrace: {fifo}: not a regular file, not a Python script\n"


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("{tmp}", "--json {tmp}: is a directory"),
        ("{tmp}/missing/trace.json", "--json {tmp}/missing/trace.json: no such directory: {tmp}/missing"),
        ("{tmp}/read-only.json", "--json {tmp}/read-only.json: it is read-only"),
        ("/proc/self/trace.json", "--json /proc/self/trace.json: cannot write it (No such file or directory)"),
    ],
)
def test_an_unwritable_json_target_fails_before_the_script_runs(script, tmp_path, capsys, target, problem):
    (tmp_path / "read-only.json").write_text("{}")
    (tmp_path / "read-only.json").chmod(0o444)
    ran = tmp_path / "ran"
    path = script(f"open({str(ran)!r}, 'w').close()\n")
    assert main(["--json", target.format(tmp=tmp_path), str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"shapetrace: {problem.format(tmp=tmp_path)}\n"
    assert not ran.exists()  # the script never ran
    assert (tmp_path / "read-only.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["read-only.json", "script.py"]  # no probe left


def test_the_up_front_json_check_keeps_an_existing_target_writable(script, tmp_path, capsys):
    target = tmp_path / "trace.json"
    target.write_text("old")
    assert main(["--json", str(target), str(script(GOOD))]) == 0
    assert [op["op"] for op in json.loads(target.read_text())["ops"]] == ["rand", "transpose"]


def test_a_json_target_nobody_reads_fails_up_front_instead_of_waiting(script, tmp_path, capsys):
    fifo = tmp_path / "trace.json"
    os.mkfifo(fifo)
    assert main(["--json", str(fifo), str(script(GOOD))]) == 2
    assert capsys.readouterr().err == f"shapetrace: --json {fifo}: cannot write it (No such device or address)\n"


NAMED = """\
import torch

B, N = 2, 3
x = torch.rand(B, N)                  # (B, N)
y = x.transpose(0, 1)                 # (N, B)
"""


@pytest.mark.parametrize("source, runs_the_pass", [(NAMED, True), (GOOD, False)])
def test_the_pass_runs_without_the_collector_and_main_gives_it_back(script, capsys, monkeypatch, source, runs_the_pass):
    """The symbolic pass runs with the cyclic collector paused, from its imports and warm-up to
    its last op; after main the collector is as it was and nothing stays frozen (a caller running
    main in-process collects as usual)."""
    from shapetrace._private import torch_symbolic
    from shapetrace.symbolic import engine

    seen = []
    warm_up, call_op = torch_symbolic.warm_up, engine._call_op
    monkeypatch.setattr(torch_symbolic, "warm_up", lambda: (seen.append(("warm-up", gc.isenabled())), warm_up()))

    def replayed(*args, **kwargs):  # the script's ops, replayed
        seen.append(("replay", gc.isenabled()))
        return call_op(*args, **kwargs)

    monkeypatch.setattr(engine, "_call_op", replayed)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert main([str(script(source))]) == 0
    assert ("(B, N)" in capsys.readouterr().out) == runs_the_pass
    assert seen[:2] == ([("warm-up", False), ("replay", False)] if runs_the_pass else [])
    assert all(not enabled for _, enabled in seen)
    assert gc.isenabled() and gc.get_freeze_count() == 0


IMPORTS = """\
import gc, sys, weakref
import torch


def import_shapetrace():
    for name in [m for m in sys.modules if m.startswith("shapetrace")]:
        del sys.modules[name]
    import shapetrace

    return shapetrace


class Node:
    pass


garbage = Node()
garbage.cycle = garbage
garbage_alive = weakref.ref(garbage)
del garbage
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
shapetrace = import_shapetrace()
oldest = {id(o) for o in gc.get_objects(generation=2)}
print(collections, gc.isenabled(), gc.get_freeze_count(), id(shapetrace.Trace) in oldest, garbage_alive())
gc.disable()
import_shapetrace()
print(gc.isenabled())
gc.enable()
gc.freeze()
import_shapetrace()
print(gc.get_freeze_count() > 0)
"""


def test_importing_shapetrace_moves_its_objects_to_the_oldest_generation_without_scanning_them():
    """The import runs with the collector paused, and what it made goes to the oldest generation
    without a collection (nothing stays frozen), after one young collection of the garbage there
    was before (it would otherwise be kept until a full collection); a collector paused before
    stays paused, objects frozen before stay frozen (moving them would unfreeze them all)."""
    done = subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[1] True 0 True None", "False", "True"]
