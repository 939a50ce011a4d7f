"""The dataflow picture: ops and module calls as nodes, modules as nested boxes, repeated blocks
folded, edges labelled with shapes, dtype and device changes coloured, the failure in red."""

from __future__ import annotations

import html
import re
import shutil
import xml.etree.ElementTree as ET

import pytest
import torch
from views_support import UNet, small_gpt

import shapetrace
from shapetrace.cli.main import main
from shapetrace.render.graph import DEVICE, DTYPE, RED, GraphvizMissing

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz (apt-get install graphviz)")
SVG = "{http://www.w3.org/2000/svg}"
SCREEN = (1920, 1200)  # CSS pixels


def picture(graph) -> dict:
    """The rendered SVG: its size in pixels, nodes (id -> text, outline colour) and edges
    ((from, to) -> label, colour, dashed)."""
    svg = graph.to_svg()
    root = ET.fromstring(svg[svg.index("<svg") :])
    nodes, edges = {}, {}
    for group in root.iter(f"{SVG}g"):
        kind = group.get("class")
        text = " ".join(" ".join(t.text or "" for t in group.iter(f"{SVG}text")).split())
        if kind == "node":
            shapes = (f"{SVG}path", f"{SVG}polygon", f"{SVG}ellipse")
            shape = next((e for e in group.iter() if e.tag in shapes), None)
            nodes[group.get("id")] = (text, shape.get("stroke") if shape is not None else None)
        elif kind == "edge":
            source, target = html.unescape(group.find(f"{SVG}title").text).split("->")
            path = group.find(f"{SVG}path")
            edges[(source, target)] = (text, path.get("stroke"), "stroke-dasharray" in path.attrib)
    pt = lambda value: float(value.removesuffix("pt")) * 96 / 72  # noqa: E731
    return {"size": (pt(root.get("width")), pt(root.get("height"))), "nodes": nodes, "edges": edges, "svg": svg}


def node_named(drawn: dict, text: str) -> str:
    (found,) = [name for name, (label, _) in drawn["nodes"].items() if label.startswith(text)]
    return found.removeprefix("node-")


@pytest.fixture(scope="module")
def gpt24():
    model = small_gpt(depth=24)
    with torch.no_grad(), shapetrace.trace(model) as t:
        model(torch.randint(0, 50, (2, 16)))
    return t


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    model = UNet()
    with shapetrace.trace(model, dims="B C H W") as good:
        model(torch.rand(2, 3, 64, 64))
    with pytest.raises(RuntimeError), shapetrace.trace(model, dims="B C H W") as bad:
        model(torch.rand(2, 3, 60, 60))  # 60 -> 30 -> 15 -> 7, and 7 * 2 = 14 cannot join 15
    return good, bad


def test_a_24_layer_gpt_folds_to_one_box_on_one_screen(gpt24):
    graph = gpt24.graph()
    drawn = picture(graph)
    assert graph.depth == 2
    assert drawn["size"][0] <= SCREEN[0] and drawn["size"][1] <= SCREEN[1]
    assert "subgraph cluster_call" in graph.source and "×24" in graph.source  # blocks.0-23 ×24, one box
    labels = [text for text, _ in drawn["nodes"].values()]
    assert "attn Attention · 20 ops" in labels and "mlp Sequential · 3 ops" in labels
    assert sum(text.startswith("norm1") for text in labels) == 1  # one block drawn, not 24
    attn, norm1 = node_named(drawn, "attn"), node_named(drawn, "norm1")
    assert drawn["edges"][(norm1, attn)][0] == "(2, 16, 16)"
    loops = [edge for edge in drawn["edges"].values() if edge[2]]
    assert loops and all(label == "(2, 16, 16)" for label, _, _ in loops)  # a block's output into the next one
    assert any(target.startswith("output") and label == "(2, 16, 50)" for (_, target), (label, _, _) in drawn["edges"].items())


def test_depth_opens_the_boxes(gpt24):
    shallow, deep = picture(gpt24.graph(depth=0)), picture(gpt24.graph(depth=3))
    assert [text for text, _ in shallow["nodes"].values()] == ["randint int64", "SmallGPT 654 ops int64 → float32", "output"]
    labels = [text for text, _ in deep["nodes"].values()]
    assert "softmax" in labels and "masked_fill" in labels and "qkv Linear · linear" in labels
    with pytest.raises(ValueError, match="depth must be 0 or more"):
        gpt24.graph(depth=-1)


def test_a_unet_reads_as_a_u_with_its_skip_connections(unet):
    good, _ = unet
    graph = good.graph()
    drawn = picture(graph)
    assert graph.depth == 1 and drawn["size"][1] <= SCREEN[1]
    names = {text.split()[0]: name.removeprefix("node-") for name, (text, _) in drawn["nodes"].items()}
    edges = drawn["edges"]
    assert edges[(names["down3"], names["up1"])][0] == "(B, 64, H/8, W/8)"
    assert edges[(names["down2"], names["up1"])][0] == "(B, 32, H/4, W/4)"  # the skip connections
    assert edges[(names["down1"], names["up2"])][0] == "(B, 16, H/2, W/2)"
    assert edges[(names["inc"], names["up3"])][0] == "(B, 8, H, W)"


def test_the_failed_op_its_operands_and_the_diagnosis_in_red(unet):
    _, bad = unet
    drawn = picture(bad.graph())
    failing = bad.failing_op()
    cat = f"op{failing.index}"
    assert drawn["nodes"][f"node-{cat}"] == ("✗ cat", RED)
    into = {label: colour for (_, target), (label, colour, _) in drawn["edges"].items() if target == cat}
    assert into == {"(B, 32, H/4, W/4)": RED, "(B, 32, 2*(H//8), 2*(W//8))": RED}
    note, colour = drawn["nodes"]["node-diagnosis"]
    assert drawn["edges"][(cat, "diagnosis")][1] == RED  # the note sits beside the failed op
    assert note.startswith("✗ cat-shape") and re.search(r"Fix( \(checked\))?:|Suggestion:", note) and colour == RED
    up1 = [text for text, _ in drawn["nodes"].values() if text.startswith("up ")]
    assert up1 == ["up ConvTranspose2d · conv_transpose2d"]  # the box around the failure is opened


def test_dtype_and_device_changes_are_coloured():
    x = torch.rand(4, 8)
    with shapetrace.trace(symbolic=False) as t:
        y = (x * 2 + 1).relu()  # float32 on cpu: the common case, not marked
        h = y.half()
        m = h.to("meta")
        m.float().sum()
    drawn = picture(t.graph())
    nodes = {text.split()[0]: (name.removeprefix("node-"), text, colour) for name, (text, colour) in drawn["nodes"].items()}
    assert nodes["half"][1:] == ("half float32 → float16", DTYPE)
    assert nodes["to"][1:] == ("to cpu → meta", DEVICE)
    assert drawn["edges"][(nodes["half"][0], nodes["to"][0])][:2] == ("(4, 8) float16", DTYPE)
    assert drawn["edges"][(nodes["to"][0], nodes["float"][0])][:2] == ("(4, 8) float16 meta", DEVICE)


def test_files_notebooks_and_a_missing_graphviz(gpt24, tmp_path, monkeypatch):
    graph = gpt24.graph()
    assert graph.save(tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")
    assert graph.save(tmp_path / "g.pdf").read_bytes().startswith(b"%PDF")
    assert "<svg" in graph.save(tmp_path / "g.svg").read_text()
    assert graph.save(tmp_path / "g.dot").read_text().startswith("digraph shapetrace")
    with pytest.raises(ValueError, match="cannot tell the format"):
        graph.save(tmp_path / "g.txt")
    assert graph._repr_svg_().lstrip().startswith("<?xml") and "<svg" in graph._repr_html_()
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot
    with pytest.raises(GraphvizMissing, match="apt-get install graphviz"):
        gpt24.graph().to_svg()
    assert gpt24.graph().source.startswith("digraph")  # the DOT text needs no Graphviz


def test_the_command_line_draws_it(tmp_path, capsys):
    script = tmp_path / "net.py"
    script.write_text(
        "import torch\nfrom torch import nn\n"
        "model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n"
        "y = model(torch.rand(3, 4))                               # (B, 2)\n"
    )
    target = tmp_path / "net.svg"
    assert main(["--graph", str(target), str(script)]) == 0
    assert f"graph written to {target}" in capsys.readouterr().out
    text = target.read_text()
    assert re.search(r">0 Linear · linear<|>0<", text) and "(3, 8)" in text
    assert main(["--graph", str(tmp_path / "net.jpg"), str(script)]) == 2
    assert "name a .svg, .png, .pdf or .dot file" in capsys.readouterr().err
