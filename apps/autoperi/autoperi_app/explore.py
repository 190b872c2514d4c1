"""`autoperi explore PATH`: one self-contained HTML page to explore generated crystals.

PATH is a samples JSON (`autoperi sample`), a CIF file or a folder of CIF files, or a loop report
folder (`autoperi loop --out`, `make demo`'s `reports/demo/loop`). The page (no network needed to
view it) has a table to sort and filter, chemiscope's 3D viewer of the selected crystal with an
element legend, and, when the source has energies, chemiscope's map (energy or E_hull against
composition). Reading: `_explore_load`; page data: `_explore_data`; HTML: `_explore_page`.
"""

from __future__ import annotations

import functools
import http.server
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from autoperi_app._errors import UserError

console = Console()


def build_page(path: Path, out: Path | None = None, title: str | None = None) -> Path:
    """Read `path`, write its explorer page to `out` (default: beside it, `<name>.html`, or
    `explore.html` inside a folder); returns the page's path. UserError on bad input."""
    from autoperi_app._explore_data import page_data
    from autoperi_app._explore_load import load_entries
    from autoperi_app._explore_page import write_page

    kind, entries = load_entries(path)
    out = out or default_out(path)
    data = page_data(entries, title or f"AutoPeri explorer: {path.name} ({kind})")
    try:
        return write_page(data, f"{kind} {path}", out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None


def default_out(path: Path) -> Path:
    """`explore.html` inside a folder, `<stem>.html` beside a file."""
    return path / "explore.html" if path.is_dir() else path.with_suffix(".html")


def explore(
    path: Annotated[Path, typer.Argument(help="samples JSON, CIF file or folder, loop report.")],
    out: Annotated[
        Path | None, typer.Option(help="Page to write (default: explore.html in a folder).")
    ] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Serve the page on localhost.")] = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port for --serve.")] = 8765,
) -> None:
    """Write one offline HTML page to explore crystals: sortable, filterable table; 3D view with
    element legend; energy (or E_hull) against composition when energies are present."""
    start = time.perf_counter()
    page = build_page(path, out)
    size = page.stat().st_size / 2**20
    console.print(f"explorer page: {page} ({size:.1f} MiB, {time.perf_counter() - start:.1f} s)")
    if serve:
        server = page_server(page, port)
        console.print(f"serving http://127.0.0.1:{server.server_address[1]}/{page.name} (Ctrl-C)")
        with server:
            server.serve_forever()


def page_server(page: Path, port: int) -> http.server.ThreadingHTTPServer:
    """An HTTP server (not yet serving) of the page's folder on 127.0.0.1:`port` (0: any free
    port); UserError when the port cannot be bound."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(page.parent.resolve())
    )
    try:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise UserError(f"cannot listen on port {port}: {exc.strerror or exc}") from None
