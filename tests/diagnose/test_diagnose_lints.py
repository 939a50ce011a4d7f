"""Device lints on clean runs: the bugs waiting for a GPU, each at its line, and no false alarms."""

from __future__ import annotations

import planted
import pytest
import torch
from planted import line_of

from shapetrace import trace

PLANTED = planted.__file__


def lints_of(model, *args):
    with trace(model) as t:
        model(*args)
    assert t.error is None
    return t.diagnostics


def test_factory_without_device_whose_result_meets_the_input():
    (lint,) = lints_of(planted.CausalMask(), torch.rand(2, 4, 4))
    assert (lint.kind, lint.severity, lint.file, lint.line, lint.op) == (
        "factory-without-device", "warning", PLANTED, line_of("factory"), "ones",
    )  # fmt: skip
    assert lint.message.startswith("`torch.ones(N, N)` in CausalMask has no device=")
    assert f"at planted.py:{line_of('mask-meets')} (`masked_fill`) it meets `att`" in lint.message
    assert lint.fix == "`torch.ones(N, N, device=att.device)`"


def test_no_lint_for_factories_on_the_inputs_device_cpu_indices_and_scalars():
    assert lints_of(planted.CausalMaskOnDevice(), torch.rand(2, 4, 4)) == []


def test_device_keyword_is_read_from_the_whole_call():
    assert lints_of(planted.CausalMaskSpelledOut(), torch.rand(2, 4, 4)) == []


def test_factories_outside_a_forward_are_the_scripts_business():
    model = planted.Projection()
    with trace(model) as t:
        x = torch.rand(2, 8)  # (B, D) made without device=, outside any forward
        model(x) + torch.ones(2, 8)
    assert t.diagnostics == []


def test_plain_tensor_attribute():
    (lint,) = lints_of(planted.ScaledNorm(), torch.rand(2, 3, 8))
    assert (lint.kind, lint.line, lint.op) == ("unregistered-tensor", line_of("attribute-use"), "*")
    assert lint.message.startswith(
        f"`self.scale` of the model (ScaledNorm) is a plain tensor attribute (set at planted.py:{line_of('attribute-set')})"
    )
    assert "`model.to(device)` will not move it. Here (`*`) it meets `x`" in lint.message
    assert lint.fix.startswith('`self.register_buffer("scale", torch.ones(dim))`')
    assert lints_of(planted.ScaledNormBuffer(), torch.rand(2, 3, 8)) == []


def test_attributes_and_factories_moved_before_they_meet_the_input_are_fine():
    assert lints_of(planted.RotaryTable(), torch.rand(2, 5, 8)) == []


def test_tensors_in_a_plain_list_attribute():
    (lint,) = lints_of(planted.MaskList(), torch.rand(2, 4))
    assert (lint.kind, lint.line) == ("unregistered-tensor", line_of("list-attribute"))
    assert lint.message.startswith("`self.masks[0]` of the model (MaskList) is a plain tensor attribute")
    assert "one `self.register_buffer(name, tensor)` each" in lint.fix


def test_op_mixing_devices_without_failing():
    x = torch.rand(2, 8, device="meta")
    (lint,) = lints_of(planted.Projection(), x)  # meta input, cpu weight: linear does not check here
    assert (lint.kind, lint.line, lint.op) == ("mixed-devices", line_of("mixed"), "linear")
    assert "`x` (2, 8) on meta, `weight` (8, 8) on cpu" in lint.message
    assert "`x` is on meta: it is an input of Projection" in lint.message


def test_host_syncs_in_a_forward():
    lints = lints_of(planted.Chatty(), torch.rand(2, 8))
    assert [(d.kind, d.line, d.op) for d in lints] == [
        ("host-sync", line_of("item"), "item"),
        ("host-sync", line_of("print"), "__repr__"),
        ("host-sync", line_of("nonzero"), "nonzero"),
        ("host-sync", line_of("bool"), "__bool__"),
    ]
    assert lints[0].message.startswith("In Chatty, `.item()` copies a value to the host")
    assert "printing a tensor" in lints[1].message


def test_cpu_result_meeting_the_input_is_one_lint():
    (lint,) = lints_of(planted.CenterOnHost(), torch.rand(2, 8))
    assert (lint.kind, lint.line, lint.op) == ("cpu-meets-device", line_of("cpu"), "cpu")
    assert f"at planted.py:{line_of('cpu-meets')} (`-`) it meets `x`" in lint.message


def test_a_lint_repeated_by_a_loop_is_counted_once():
    model = planted.CausalMask()
    with trace(model) as t:
        for _ in range(3):
            model(torch.rand(2, 4, 4))
    (lint,) = t.diagnostics
    assert lint.kind == "factory-without-device" and lint.count == 3


# --- shape lints: bugs that raise nothing -------------------------------------------------------


def test_an_outer_product_written_on_purpose_is_not_a_broadcast_bug():
    class PairwiseDistance(torch.nn.Module):
        def forward(self, x):
            return (x[:, None, :] - x[None, :, :]).pow(2).sum(-1).mean()  # (N, N, D) on purpose

    assert lints_of(PairwiseDistance(), torch.rand(5, 3)) == []


def test_a_broadcast_larger_than_both_operands_that_is_reduced():
    class Loss(torch.nn.Module):
        def forward(self, pred, target):
            return (pred - target).abs().mean()  # (B, 1) - (B,) -> (B, B)

    (lint,) = lints_of(Loss(), torch.rand(6, 1), torch.rand(6))
    assert lint.kind == "broadcast-reduced" and [o.role for o in lint.operands] == ["pred", "target"]
    assert "broadcast to (6, 6), larger than both" in lint.message and "`mean` at test_diagnose_lints.py:" in lint.message
    assert lint.fix == "`pred.squeeze(-1) - target`" and lint.fix_checked
    not_reduced = lints_of(torch.nn.Identity(), torch.rand(6, 1))  # nothing to reduce: nothing to say
    assert not_reduced == []


def test_heads_split_without_the_transpose_and_the_ambiguous_case():
    class Split(torch.nn.Module):
        def __init__(self, heads):
            super().__init__()
            self.heads = heads

        def forward(self, x):
            B, N, D = x.shape
            return x.view(B, self.heads, N, D // self.heads)  # (B, h, N, d)

    (lint,) = lints_of(Split(heads=4), torch.rand(2, 6, 16))
    assert lint.kind == "heads-split" and lint.fix_checked
    assert lint.fix == "`x.view(B, N, self.heads, D // self.heads).transpose(1, 2)`"
    assert lints_of(Split(heads=6), torch.rand(2, 6, 12)) == []  # h == N: (B, h, N, d) and (B, N, h, d) look alike


# --- how the model was built -----------------------------------------------------------------------


def test_a_list_of_references_to_registered_modules_is_fine():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
            self.order = [self.a, self.b]  # references: both are registered as attributes

        def forward(self, x):
            for layer in self.order:
                x = layer(x)
            return x

    assert lints_of(Net(), torch.rand(2, 4)) == []


def test_a_parameter_the_forward_never_reads():
    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)
            self.gain = torch.nn.Parameter(torch.ones(4))  # never used

        def forward(self, x):
            return self.fc(x)

    (lint,) = lints_of(Scaled(), torch.rand(2, 4))
    assert lint.kind == "unused-parameter" and lint.op_index is None
    assert lint.message.startswith("`self.gain` of the model (Scaled) is a trainable parameter that no op")
    assert lint.fix == "use `self.gain` in `Scaled.forward`, or delete it" and not lint.fix_checked
    frozen = Scaled()
    frozen.gain.requires_grad_(False)  # a frozen parameter does not train anyway
    assert lints_of(frozen, torch.rand(2, 4)) == []


def test_no_unused_parameter_lint_when_the_forward_failed():
    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(4, 4), torch.nn.Linear(5, 4)

        def forward(self, x):
            return self.fc2(self.fc1(x))

    model = Broken()
    with pytest.raises(RuntimeError), trace(model) as t:
        model(torch.rand(2, 4))
    assert [d.kind for d in t.diagnostics] == ["matmul-shape"]  # fc2 never ran: not a lint


def test_a_loss_module_given_a_column_and_a_vector():
    class Regression(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.criterion = torch.nn.Linear(4, 1), torch.nn.MSELoss()

        def forward(self, x, y):
            return self.criterion(self.net(x), y)  # (B, 1) against (B,)

    with pytest.warns(UserWarning, match="target size"):
        (lint,) = lints_of(Regression(), torch.rand(5, 4), torch.rand(5))
    assert lint.kind == "broadcast-reduced" and "broadcast to (5, 5)" in lint.message
    assert lint.fix == "`self.criterion(self.net(x).squeeze(-1), y)`" and lint.fix_checked
