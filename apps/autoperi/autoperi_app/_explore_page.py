"""One self-contained explorer page: chemiscope's bundle (from the installed `chemiscope` wheel),
the page data as JSON and the page's own script, all inlined; the page loads nothing at view time.

Untrusted text (formulas, CIF block names, file names) reaches the page only inside the JSON
block, escaped so that it cannot close the script element, and is put into the page with
`textContent`; the few strings written into the HTML itself go through `html.escape`.
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import json
from pathlib import Path
from typing import Any

from autoperi_app._explore_js import SCRIPT, STYLE

#: (row key, header) of the table; the energy, E_hull and round columns only when some row has one
_COLUMNS = (
    ("key", "crystal"),
    ("formula", "formula"),
    ("elements", "elements"),
    ("natoms", "atoms"),
    ("spacegroup", "space group"),
    ("energy", "E (eV/atom)"),
    ("e_hull", "E_hull (eV/atom)"),
    ("round", "round"),
)
_OPTIONAL = {"energy", "e_hull", "round"}
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                 "\u2029": "\\u2029"}  # fmt: skip


@functools.cache
def chemiscope_js() -> str:
    """chemiscope's standalone bundle, as shipped in its wheel (the one its Sphinx pages use)."""
    bundle = importlib.resources.files("chemiscope") / "sphinx" / "static" / "chemiscope.min.js"
    return bundle.read_text(encoding="utf-8")


def script_json(value: Any) -> str:
    """`value` as JSON safe inside a <script> element: no '<', '>', '&' or line separators."""
    text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    return "".join(_JSON_ESCAPES.get(ch, ch) for ch in text)


def columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The table's columns for these rows (optional ones only when some row has a value)."""
    return [
        (key, label)
        for key, label in _COLUMNS
        if key not in _OPTIONAL or any(r[key] is not None for r in rows)
    ]


def render_page(data: dict[str, Any], source: str) -> str:
    """The page's HTML for `page_data(...)` output; `source` names what was read."""
    headers = "".join(
        f'<th data-key="{key}">{html.escape(label)}</th>' for key, label in columns(data["rows"])
    )
    title = html.escape(data["title"])
    plot = '<div id="cs-map"></div>' if data["has_energy"] else ""
    note = "" if data["has_energy"] else '<p class="note">No energies in this source: no plot.</p>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{STYLE}</style>
<script>{chemiscope_js()}</script>
</head><body>
<h1>{title}</h1>
<p class="note">Source: {html.escape(source)}. Space groups: spglib (symprec 0.1). Viewer:
chemiscope (click a row or a point; drag to rotate).</p>
<div id="layout">
<div id="table-pane">
<input id="filter" type="search" placeholder="filter: elements (Sr Ti) or text (P4/mmm, SrTi)">
<span id="count"></span>
<table id="crystals"><thead><tr>{headers}</tr></thead><tbody></tbody></table>
</div>
<div id="viewer-pane">
<div><strong id="selected-name"></strong> <span id="legend"></span></div>
<div id="cs-structure"></div><div id="cs-info"></div>{plot}{note}<div id="cs-meta"></div>
</div>
</div>
<script id="explore-data" type="application/json">{script_json(data)}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def write_page(data: dict[str, Any], source: str, out: Path) -> Path:
    """Write the page to `out` (parent folders made); returns `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(data, source), encoding="utf-8")
    return out
