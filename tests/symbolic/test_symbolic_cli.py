"""The command line: names from the script's own source, --dims, and a script that runs once."""

from __future__ import annotations

from shapetrace.cli.main import main


def test_script_gets_symbolic_shapes_with_no_option(examples, capsys):
    assert main([str(examples.path("tokenize_image"))]) == 0
    out = capsys.readouterr().out
    assert out.count("h.shape torch.Size([8, 512, 16])") == 1  # the script ran once, printed once
    assert "(B, C, H*W)" in out and "(B, H*W, C)" in out and "dims B=8, C=512, H=4, W=4" in out


def test_dims_names_a_constant_and_bad_dims_stop_before_running(examples, capsys):
    assert main(["--dims", "D=512", str(examples.path("patch_embed"))]) == 0
    out = capsys.readouterr().out
    assert "(B, D, H/32, W/32)" in out and "assuming H, W divisible by 32" in out and "C fixed to 3 at patch_embed.py:34: conv2d needs C == 3" in out
    assert main(["--dims", "B H*W", str(examples.path("patch_embed"))]) == 2
    captured = capsys.readouterr()
    assert "is not a dim name" in captured.err and "image.shape" not in captured.out


def test_no_symbolic_shows_concrete_sizes(examples, capsys):
    assert main(["--no-symbolic", str(examples.path("tokenize_image"))]) == 0
    out = capsys.readouterr().out
    assert "(8, 16, 512)" in out and "(B, H*W, C)" not in out
