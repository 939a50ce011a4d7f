"""The interactive report (``--html FILE``, ``Trace.report()``): one self-contained HTML file, no
network. The module tree with folded blocks that open on a click, a filter box (module, op,
shape text), each row opening its source with a few lines around it, the dataflow picture (a
click on a node finds its row), the diagnosis, contract violations and lints."""

from __future__ import annotations

import html
import json
import linecache
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shapetrace.capture.source import display_path, short_location
from shapetrace.render.cells import Cell
from shapetrace.render.export import CELL, PRE, TH, THEME, css, html_page, spans
from shapetrace.render.graph import GraphvizMissing, TraceGraph
from shapetrace.render.tree import Node, TraceTree

if TYPE_CHECKING:
    from shapetrace.capture.records import TensorMeta
    from shapetrace.trace import Trace

CONTEXT = 3  # lines of source shown above and below a row's line
GLYPHS = ("▾ ", "▸ ")


class TraceReport:
    """The report of a trace: ``to_html()`` is the page, ``save(path)`` writes it. ``expand``
    unfolds module calls as in the tree; ``graph_depth`` opens the picture's boxes that deep
    (default: as deep as fits one screen)."""

    def __init__(
        self, trace: Trace, expand: str | Iterable[str] | None = None, graph_depth: int | None = None
    ) -> None:
        self.trace = trace
        self.tree = TraceTree(trace, expand=expand)
        self.graph = TraceGraph(trace, depth=graph_depth, tree=self.tree.tree)  # one folded tree for both

    # --- the page ---------------------------------------------------------------------------------

    def to_html(self) -> str:
        tree = self.tree
        rows = tree.rows
        records = [self._record(parent, node) for parent, node in tree.outline]
        files: dict[str, int] = {}
        for record in records:
            file = record.pop("file", None)
            if file is not None:
                record["f"] = files.setdefault(file, len(files))
        data = {
            "rows": records,
            "files": [
                self._source(file, [r["l"] for r in records if r.get("f") == number])
                for file, number in files.items()
            ],
            "nodes": self._graph_nodes(records),
        }
        summary = tree.header
        body = ["<header><h1>shapetrace report</h1>"]
        if summary:
            body.append(f'<pre style="{PRE}">' + "\n".join(spans(line) for line in summary) + "</pre>")
        body.append("</header>")
        if tree.after:  # the diagnosis and the lints, as the console draws them
            body.append(
                '<section id="diagnosis"><pre style="'
                + PRE
                + '">'
                + "\n".join(spans(line) for line in tree.after)
                + "</pre></section>"
            )
        body.append('<div id="panes"><main>')
        body.append(
            '<div class="toolbar"><input id="filter" type="search" autocomplete="off" '
            'placeholder="filter by module, op or shape: attn, softmax, (B, 16"> '
            '<button id="open-all" type="button">open all</button> <button id="fold-all" type="button">fold all</button> '
            '<span id="count"></span></div>'
        )
        body.append(self._table(rows, records))
        footer = tree.footer
        if footer:
            body.append(
                f'<pre id="footer" style="{PRE}">' + "\n".join(spans(line) for line in footer) + "</pre>"
            )
        body.append(
            '</main><aside><section id="source"><p class="hint">Click a row to see its source.</p></section>'
        )
        body.append(f'<details id="picture" open><summary>dataflow</summary>{self._picture()}</details>')
        body.append("</aside></div>")
        payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
        body.append(f'<script type="application/json" id="data">{payload}</script>')
        title = f"shapetrace: {self.trace.summary.model_type or 'trace'}"
        return html_page(title, "\n".join(body), style=STYLE, script=SCRIPT)

    def save(self, path: str | Path) -> Path:
        """Write the page to ``path`` (whole or not at all)."""
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(self.to_html(), encoding="utf-8")
        os.replace(partial, path)
        return path

    # --- parts ------------------------------------------------------------------------------------

    def _table(self, rows: list, records: list[dict]) -> str:
        columns = self.tree.columns
        out = ['<table id="rows"><thead><tr>']
        out.extend(
            f'<th style="{TH};text-align:{"right" if c.justify == "right" else "left"}">{html.escape(c.header)}</th>'
            for c in columns
        )
        out.append("</tr></thead><tbody>")
        styles = [
            f' style="{CELL};text-align:{"right" if c.justify == "right" else "left"}'
            + (f";{css(c.style)}" if c.style else "") + '"'
            for c in columns
        ]  # fmt: skip
        has_children = {record["p"] for record in records if record["p"] is not None}
        for index, (row, record) in enumerate(zip(rows, records)):
            classes = [record["k"]]
            if record.get("n", 1) > 1:
                classes.append("folded")
            if index in has_children:
                classes.append("parent")
            if row.style:
                classes.append("failed")
            cells = "".join(f"<td{style}>{_cell_html(cell)}</td>" for cell, style in zip(row.cells, styles))
            out.append(f'<tr data-i="{index}" class="{" ".join(classes)}">{cells}</tr>')
        out.append("</tbody></table>")
        return "".join(out)

    def _record(self, parent: int | None, node: Node) -> dict[str, Any]:
        """What the page knows of a row: its parent, kind, source line, search text, details."""
        trace = self.trace
        record: dict[str, Any] = {"p": parent, "n": node.count}
        if node.group:
            record.update(
                k="group",
                s=f"×{node.count} repeated",
                d=[["repeats", f"{node.count} ×, from op {_first(node)}"]],
            )
            return record
        if node.op is not None:
            op = node.op
            call = trace.modules[op.module_index] if op.module_index is not None else None
            record.update(k="op", file=op.file, l=op.line, g=f"op{op.index}")
            details = [
                ["op", f"{op.op}  ({op.qualname})" if op.qualname and op.qualname != op.op else op.op],
                ["module", (call.path or call.type) if call else "—"],
                *_tensors("in", op.inputs),
                *(_tensors("out", op.outputs) if not op.failed else [["out", "✗ raised"]]),
            ]
            search = [op.op, op.qualname, call.path if call else "", call.type if call else "", op.code]
            metas = op.outputs
        else:
            call = node.call
            assert call is not None
            record.update(k="call", file=call.file, l=call.line, g=f"call{call.index}")
            ops = call.end_op - call.first_op
            details = [
                ["module", f"{call.path or '(root)'}  {call.type}"],
                [
                    "ran",
                    f"{ops} op{'s' if ops != 1 else ''}"
                    + (f", ×{node.count} identical calls" if node.count > 1 else ""),
                ],
                *_tensors("in", call.inputs),
                *_tensors("out", call.outputs),
            ]
            search = [call.path, call.type, call.code]
            if len(node.children) == 1 and node.children[0].op is not None:
                search.append(node.children[0].op.op)
            metas = call.outputs
        record["d"] = details
        record["s"] = " ".join([*search, *(m.shape_text() for m in metas)]).lower()
        return record

    def _source(self, file: str, lines: list[int]) -> dict[str, Any]:
        """The lines of ``file`` the rows need, with their neighbours."""
        wanted = sorted(
            {n for line in lines if line for n in range(max(1, line - CONTEXT), line + CONTEXT + 1)}
        )
        text = {str(n): linecache.getline(file, n).rstrip("\n") for n in wanted}
        return {"name": short_location(file, 0)[:-2], "path": display_path(file), "lines": text}

    def _graph_nodes(self, records: list[dict]) -> dict[str, int]:
        """The picture's node ids, each to the row it stands for."""
        nodes: dict[str, int] = {}
        for index, record in enumerate(records):
            key = record.get("g")
            if key is not None:
                nodes.setdefault(key, index)
        return nodes

    def _picture(self) -> str:
        try:
            return f'<div class="picture">{self.graph._repr_html_()}</div>'
        except GraphvizMissing as missing:
            return f'<p class="hint">{html.escape(str(missing))}</p>'


def _cell_html(cell: Cell) -> str:
    """A cell as HTML, its fold glyph (``▾``) in a span the page turns."""
    out = []
    for text, style in cell:
        if text in GLYPHS:
            out.append(f'<span class="toggle" style="{css(style)}">{text}</span>')
        else:
            out.append(spans(((text, style),)))
    return "".join(out)


def _tensors(label: str, metas: tuple[TensorMeta, ...]) -> list[list[str]]:
    return [
        [
            f"{label}{meta.path or (f' {i}' if len(metas) > 1 else '')}",
            f"{meta.shape_text()}  {meta.dtype_name}  {meta.device_name}",
        ]
        for i, meta in enumerate(metas[:8])
    ] + ([[label, f"… {len(metas) - 8} more"]] if len(metas) > 8 else [])


def _first(node: Node) -> int:
    while node.op is None and node.call is None and node.children:
        node = node.children[0]
    return node.op.index if node.op is not None else node.call.first_op if node.call is not None else 0


STYLE = f"""\
h1{{font-size:16px;margin:0 0 8px}}
header,#diagnosis{{margin-bottom:12px}}
#panes{{display:flex;gap:16px;align-items:flex-start}}
main{{flex:1 1 auto;min-width:0;overflow-x:auto}}
aside{{flex:0 0 36%;position:sticky;top:8px;max-height:calc(100vh - 16px);overflow:auto;min-width:320px}}
@media (max-width: 1000px){{#panes{{display:block}}aside{{position:static;max-height:none}}}}
.toolbar{{position:sticky;top:0;background:Canvas;padding:4px 0;z-index:1}}
#filter{{font:inherit;width:24em;padding:2px 6px}}
#count{{color:{THEME.ansi_colors[0].hex};margin-left:8px}}
#rows{{border-collapse:collapse;font-size:13px}}
#rows tbody tr{{cursor:default}}
#rows tr.parent{{cursor:pointer}}
#rows tr.failed{{background:rgba(229,72,77,.18)}}
#rows tr.selected{{outline:2px solid {THEME.ansi_colors[4].hex};outline-offset:-2px}}
#rows tr:hover{{background:rgba(127,127,127,.12)}}
.toggle{{display:inline-block}}
#rows td:nth-child(3){{max-width:44ch;overflow:hidden;text-overflow:ellipsis}}
#source pre{{margin:0;padding:6px 8px;border:1px solid rgba(127,127,127,.4);border-radius:4px;overflow-x:auto}}
#source .here{{background:rgba(61,123,240,.18);font-weight:bold}}
#source .number{{color:{THEME.ansi_colors[0].hex};user-select:none}}
#source table{{border-collapse:collapse;margin-top:6px}}
#source td{{padding:1px 8px 1px 0;vertical-align:top;white-space:pre}}
#source h2{{font-size:14px;margin:0 0 6px}}
.hint{{color:{THEME.ansi_colors[0].hex}}}
summary{{cursor:pointer;font-weight:bold;margin:8px 0}}
.picture svg{{max-width:100%;height:auto}}
.picture .node{{cursor:pointer}}
.picture .node.selected polygon,.picture .node.selected path{{stroke:{THEME.ansi_colors[4].hex};stroke-width:3}}
"""

SCRIPT = r"""
"use strict";
const data = JSON.parse(document.getElementById("data").textContent);
const rows = [...document.querySelectorAll("#rows tbody tr")];
const kids = data.rows.map(() => []);
data.rows.forEach((r, i) => { if (r.p !== null) kids[r.p].push(i); });
const open = data.rows.map(r => r.n <= 1 && r.k !== "group");  // folded entries start closed
const filter = document.getElementById("filter");
const count = document.getElementById("count");
let selected = null;

function refresh() {
  const query = filter.value.trim().toLowerCase();
  let keep = null, matched = 0;
  if (query) {
    keep = new Set();
    data.rows.forEach((r, i) => {
      if (!(r.s || "").includes(query)) return;
      matched++;
      for (let j = i; j !== null && !keep.has(j); j = data.rows[j].p) keep.add(j);
    });
  }
  const visible = [];
  let shown = 0;
  data.rows.forEach((r, i) => {
    visible[i] = keep ? keep.has(i) : (r.p === null || (visible[r.p] && open[r.p]));
    rows[i].style.display = visible[i] ? "" : "none";
    if (visible[i]) shown++;
    const glyph = rows[i].querySelector(".toggle");
    if (glyph) glyph.textContent = (keep ? kids[i].some(k => keep.has(k)) : open[i]) ? "▾ " : "▸ ";
  });
  count.textContent = query ? (matched === 1 ? "1 row matches" : `${matched} rows match`) : `${shown} of ${rows.length} rows shown`;
}

function escapeHtml(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function showSource(i) {
  const r = data.rows[i];
  const panel = document.getElementById("source");
  let out = "";
  if (r.f !== undefined) {
    const file = data.files[r.f];
    out += `<h2 title="${escapeHtml(file.path)}">${escapeHtml(file.name)}:${r.l}</h2><pre>`;
    for (let n = Math.max(1, r.l - 3); n <= r.l + 3; n++) {
      const text = file.lines[n];
      if (text === undefined) continue;
      const mark = n === r.l ? ' class="here"' : "";
      out += `<div${mark}><span class="number">${String(n).padStart(5)}  </span>${escapeHtml(text)}</div>`;
    }
    out += "</pre>";
  }
  out += "<table>" + r.d.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`).join("") + "</table>";
  panel.innerHTML = out;
}

function markNode(i) {
  document.querySelectorAll(".picture .node.selected").forEach(n => n.classList.remove("selected"));
  const key = data.rows[i].g;
  const node = key && document.getElementById("node-" + key);
  if (node) node.classList.add("selected");
}

function select(i) {
  if (selected !== null) rows[selected].classList.remove("selected");
  selected = i;
  rows[i].classList.add("selected");
  showSource(i);
  markNode(i);
}

function reveal(i) {
  if (rows[i].style.display === "none" && filter.value) filter.value = "";
  for (let j = data.rows[i].p; j !== null; j = data.rows[j].p) open[j] = true;
  refresh();
  select(i);
  rows[i].scrollIntoView({block: "center"});
}

document.querySelector("#rows tbody").addEventListener("click", event => {
  const tr = event.target.closest("tr");
  if (!tr) return;
  const i = Number(tr.dataset.i);
  if (kids[i].length && !filter.value.trim()) open[i] = !open[i];
  refresh();
  select(i);
});
filter.addEventListener("input", () => {
  if (!filter.value.trim() && selected !== null) {  // back to the whole tree: keep the chosen row in sight
    for (let j = data.rows[selected].p; j !== null; j = data.rows[j].p) open[j] = true;
  }
  refresh();
});
document.getElementById("open-all").addEventListener("click", () => { open.fill(true); refresh(); });
document.getElementById("fold-all").addEventListener("click", () => {
  data.rows.forEach((r, i) => { open[i] = r.p === null ? true : false; }); refresh();
});
document.querySelectorAll(".picture .node").forEach(node => {
  node.addEventListener("click", () => {
    const row = data.nodes[node.id.replace(/^node-/, "")];
    if (row !== undefined) reveal(row);
  });
});
refresh();
"""
