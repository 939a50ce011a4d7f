"""Installed through ``pytest11``; unused, the plugin changes nothing and costs nothing."""

from __future__ import annotations

from importlib.metadata import entry_points

from plugin_support import write_tests

import pytest_shapetrace
from shapetrace._private.module_calls import global_module_hook_counts
from shapetrace._private.torch_api import torch_function_mode_depth


def test_the_plugin_is_registered_through_the_pytest11_entry_point():
    (entry,) = [e for e in entry_points(group="pytest11") if e.name == "shapetrace"]
    assert entry.value == "pytest_shapetrace"
    assert entry.load() is pytest_shapetrace


def test_pytest_loads_it_and_imports_neither_torch_nor_shapetrace(pytester):
    # A fresh interpreter: only there can the modules a session imports be seen.
    write_tests(pytester, """
        import sys

        def test_nothing_heavy_was_imported(request):
            assert request.config.pluginmanager.get_plugin("shapetrace") is sys.modules["pytest_shapetrace"]
            heavy = [name for name in sys.modules if name.split(".")[0] in ("torch", "shapetrace", "rich", "sympy")]
            assert heavy == []
    """)
    # Other plugins' imports are theirs: only this one is loaded.
    others = ("-p", "no:jaxtyping", "-p", "no:typeguard", "-p", "no:anyio")
    pytester.runpytest_subprocess(*others).assert_outcomes(passed=1)


def test_a_test_that_does_not_use_it_runs_with_nothing_installed(net):
    write_tests(net, """
        import torch
        from net import Net
        from shapetrace._private.module_calls import global_module_hook_counts
        from shapetrace._private.torch_api import torch_function_mode_depth
        from pytest_shapetrace import SESSION

        def test_plain(request):
            model = Net()
            model(torch.rand(2, 8))
            assert torch_function_mode_depth() == 0
            assert set(global_module_hook_counts().values()) == {0}
            assert "forward" not in vars(model)
            assert SESSION not in request.config.stash  # no plugin state was created
    """)
    net.inline_run().assertoutcome(passed=1)


def test_traced_tests_leave_nothing_behind_for_the_next_one(net):
    write_tests(net, """
        import pytest, torch
        from net import Net, Pair
        from shapetrace._private.module_calls import global_module_hook_counts
        from shapetrace._private.torch_api import torch_function_mode_depth

        @pytest.mark.shapetrace
        def test_marked(shapes):
            shapes(Pair(), torch.rand(2, 3), torch.rand(2, 3))
            with pytest.raises(RuntimeError):
                shapes(Net(), torch.rand(2, 7))

        def test_after():
            assert torch_function_mode_depth() == 0
            assert set(global_module_hook_counts().values()) == {0}
    """)
    result = net.inline_run()
    result.assertoutcome(passed=2)
    (items,) = [call.items for call in result.getcalls("pytest_collection_modifyitems")]
    assert all(pytest_shapetrace.TRACES not in item.stash for item in items)  # traces freed at teardown


def test_a_marked_test_using_the_fixture_leaves_its_model_as_it_was(net):
    write_tests(net, """
        import pytest, torch
        from net import Pair

        MODEL = Pair()

        @pytest.mark.shapetrace
        def test_marked(shapes):
            shapes(MODEL, torch.rand(2, 3), torch.rand(2, 3))

        def test_after():
            assert "forward" not in vars(MODEL)
    """)
    net.inline_run().assertoutcome(passed=2)


def test_a_session_tracing_every_test_leaves_nothing_behind(net):
    write_tests(net, """
        import torch
        from net import Net, Pair

        def test_contracts(shapes):
            shapes(Pair(), torch.rand(2, 3), torch.rand(2, 3))
            Pair()(torch.rand(2, 3), torch.rand(2, 3))

        def test_failing():
            Net()(torch.rand(2, 7))
    """)
    result = net.inline_run("--shapetrace-all", "--shapetrace-contracts")
    result.assertoutcome(passed=1, failed=1)
    assert torch_function_mode_depth() == 0
    assert set(global_module_hook_counts().values()) == {0}
