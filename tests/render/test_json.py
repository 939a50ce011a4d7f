"""The JSON document: schema shapetrace.trace/1 (docs/json-schema.md)."""

from __future__ import annotations

import json

import pytest
import torch

import shapetrace


def test_json_follows_the_documented_schema(examples):
    pe = examples.load("patch_embed")
    model = pe.PatchEmbedding(img_size=128)
    x = torch.rand(8, 3, 128, 128)
    with shapetrace.trace(model) as t:
        model(x)
    doc = json.loads(t.to_json())
    assert doc["schema"] == "shapetrace.trace/1"
    assert doc["model"] == {"type": "PatchEmbedding", "parameters": t.summary.parameters}
    assert doc["error"] is None
    op = doc["ops"][1]
    assert {"index", "op", "qualname", "module", "module_call", "file", "line", "code", "failed",
            "inputs", "outputs"} <= set(op)  # fmt: skip
    assert (op["index"], op["op"], op["module"], op["module_call"]) == (1, "flatten", "", 1)
    assert op["file"] == str(examples.path("patch_embed")) and op["code"].startswith("x = x.flatten(2)")
    assert op["outputs"] == [
        {"shape": [8, 512, 16], "dtype": "float32", "device": "cpu", "requires_grad": True,
         "expr": "(B, D?, H*W/1024)", "expr_exact": "(B, D?, (H//32)*(W//32))", "path": "",
         "id": op["outputs"][0]["id"]}
    ]  # fmt: skip
    module = doc["modules"][1]
    assert {"path", "type", "call", "inputs", "outputs", "parent", "depth", "first_op", "end_op", "failed",
            "file", "line", "code"} <= set(module)  # fmt: skip
    assert (module["path"], module["type"], module["call"]) == ("patch_embed", "Conv2d", 1)
    assert (doc["modules"][0]["depth"], module["depth"], module["parent"]) == (0, 1, 0)
    assert module["code"] == "x = self.patch_embed(x)                                      # (B, D, H//32, W//32)"
    assert (module["file"], module["line"]) == (str(examples.path("patch_embed")), 34)
    assert module["inputs"][0]["shape"] == [8, 3, 128, 128]


def test_json_of_a_failed_trace_names_the_failing_op():
    a, b = torch.rand(2, 3), torch.rand(4, 5)
    with pytest.raises(RuntimeError), shapetrace.trace() as t:
        a @ b
    doc = t.to_dict()
    assert doc["error"]["op_index"] == 0 and doc["error"]["type"] == "RuntimeError"
    assert doc["ops"][0]["failed"] is True and doc["ops"][0]["outputs"] == []
    assert [i["shape"] for i in doc["ops"][0]["inputs"]] == [[2, 3], [4, 5]]


def test_save_json_streams_the_same_document(tmp_path):
    # tensors of equal metadata (the file writes their common text once) keep their own ids
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), torch.nn.ReLU())
    x = torch.rand(2, 3)
    with shapetrace.trace(model, dims="B _") as t:
        model(x)
    t.save_json(tmp_path / "trace.json")
    text = (tmp_path / "trace.json").read_text()
    assert json.loads(text) == t.to_dict() == json.loads(t.to_json(indent=None))
    outputs = [op["outputs"][0] for op in json.loads(text)["ops"][1:]]
    assert [o["expr"] for o in outputs] == ["(B, 4)"] * 3 and len({o["id"] for o in outputs}) == 3
    lines = text.splitlines()
    assert sum(line.startswith('    {"index"') for line in lines) == len(t.ops) + len(t.modules)  # one per line
