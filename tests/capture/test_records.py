"""Records built on the fast path are the same as records built by their constructors."""

from __future__ import annotations

import dataclasses

import torch

import shapetrace
from shapetrace.capture.records import TensorMeta, build, tensor_entry


def test_build_equals_the_dataclass_constructor():
    x = torch.rand(2, 3)
    fast = TensorMeta.from_entry(tensor_entry(x, "[0]"), "(B, C)")
    assert fast == TensorMeta((2, 3), torch.float32, torch.device("cpu"), False, id(x), "[0]", "(B, C)")
    assert hash(fast) == hash(dataclasses.replace(fast))
    assert build(TensorMeta, **vars(fast)) == fast


def test_every_record_of_a_trace_has_every_field(examples):
    model = examples.load("patch_embed").PatchEmbedding(img_size=64)
    x = torch.rand(2, 3, 64, 64)
    with shapetrace.trace(model, symbolic=False) as t:
        model(x)
    records = [*t.ops, *t.modules, *(m for op in t.ops for m in (*op.inputs, *op.outputs))]
    for record in records:
        names = {f.name for f in dataclasses.fields(record)}
        assert names <= set(vars(record)), type(record).__name__  # no field left to a class default
        assert dataclasses.replace(record) == record  # the constructor gives the same record
