"""The explorer page in a real headless Chromium (Debian's chromium + chromedriver, driven by
Selenium; `make test` installs them when /usr/bin/chromium is missing).

One page of real samples (the committed template checkpoint, three compositions), opened from
file://, and one of the committed demo loop report (energies: the page has its plot), served on
localhost as `--serve` does; Chromium runs with the network-free flags below. Then: row count,
a filter and the count it leaves, sorting, selecting a crystal draws it (the viewer's canvas has
more than one colour) and the legend names its elements in the viewer's colours.
"""

import io
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from autoperi_app._explore_data import element_colour
from autoperi_app.explore import build_page, page_server

REPO = Path(__file__).resolve().parents[3]
CHROMIUM = Path(os.environ.get("AUTOPERI_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("AUTOPERI_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]
COMPOSITIONS = {"SrTiO3": 3, "BaZrO3": 3, "KNbO3": 2}
_CANVAS = """
const find = (root) => { for (const e of root.querySelectorAll('*')) {
  if (e.tagName === 'CANVAS') return e;
  const inner = e.shadowRoot && find(e.shadowRoot); if (inner) return inner; } return null; };
return find(document.getElementById('cs-structure'));
"""


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium with a fresh profile; Selenium Manager is never asked for a driver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.fail(f"no {CHROMIUM} / {CHROMEDRIVER}: `make test` installs chromium first")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    """samples.json of `autoperi sample` on the committed template checkpoint."""
    from autoperi_model.cli import sample_cmd

    out = tmp_path_factory.mktemp("samples")
    for formula, n in COMPOSITIONS.items():
        sample_cmd(REPO / "checkpoints" / "perov_5_templates", out / formula, [formula], n=n)
    crystals = [c for f in COMPOSITIONS for c in _read(out / f / "samples.json")["crystals"]]
    (out / "samples.json").write_text(json.dumps({"checkpoint": "test", "crystals": crystals}))
    return out / "samples.json"


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _open(driver, url: str) -> None:
    driver.get(url)
    deadline = time.monotonic() + 30
    while not driver.execute_script("return window.explore.ready || window.explore.error"):
        assert time.monotonic() < deadline, "the page did not load in 30 s"
        time.sleep(0.1)
    assert driver.execute_script("return window.explore.error") is None


def _filter(driver, text: str) -> int:
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element("id", "filter")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)  # typed, as a user does (clear() fires no input event)
    if text:
        box.send_keys(text)
    return driver.execute_script("return window.explore.visibleRows()")


def _colours_drawn(driver) -> int:
    canvas = driver.execute_script(_CANVAS)
    assert canvas is not None, "no canvas in the structure viewer"
    image = Image.open(io.BytesIO(canvas.screenshot_as_png)).convert("RGB")
    return len(set(image.getdata()))


def _select(driver, index: int) -> list[str]:
    """Click the table row of crystal `index`; the legend's element names (each swatch checked
    to be the element's Jmol colour, the one the viewer draws)."""
    driver.find_element("css selector", f'#crystals tbody tr[data-index="{index}"]').click()
    time.sleep(0.5)  # the viewer draws on the next animation frames
    items = driver.find_elements("css selector", "#legend .legend-item")
    for item in items:
        swatch = item.find_element("css selector", ".swatch").value_of_css_property(
            "background-color"
        )
        rgb = tuple(int(element_colour(item.text)[i : i + 2], 16) for i in (1, 3, 5))
        assert swatch in (f"rgb{rgb}", f"rgba{(*rgb, 1)}"), (item.text, swatch)
    return [item.text for item in items]


def test_samples_page_table_filter_viewer_legend(browser, samples, tmp_path):
    crystals = _read(samples)["crystals"]
    page = build_page(samples, tmp_path / "samples.html")
    _open(browser, page.resolve().as_uri())
    assert len(browser.find_elements("css selector", "#crystals tbody tr")) == len(crystals) == 8
    assert _filter(browser, "Ti") == COMPOSITIONS["SrTiO3"]
    assert _filter(browser, "Ba O") == COMPOSITIONS["BaZrO3"]
    assert _filter(browser, "Ti Zr") == 0
    _filter(browser, "")
    index = len(crystals) - 1  # a KNbO3
    symbols = {19: "K", 41: "Nb", 8: "O"}
    assert _select(browser, index) == sorted(
        {symbols[z] for z in crystals[index]["atomic_numbers"]}
    )
    assert _colours_drawn(browser) > 1
    assert not browser.find_elements("id", "cs-map")  # samples carry no energy: no plot


def test_loop_report_page_has_energies_and_plot(browser, tmp_path):
    loop = REPO / "reports" / "demo" / "loop"
    journal = _read(loop / "journal.json")
    page = build_page(loop, tmp_path / "loop.html")
    server = page_server(page, 0)  # what `autoperi explore --serve` serves
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _open(browser, f"http://127.0.0.1:{server.server_address[1]}/{page.name}")
    finally:
        server.shutdown()
        server.server_close()
    rows = browser.find_elements("css selector", "#crystals tbody tr")
    assert len(rows) == sum(len(r["selected"]) for r in journal["rounds"])
    header = [th.text for th in browser.find_elements("css selector", "#crystals thead th")]
    assert "E (eV/atom)" in header and "round" in header
    assert browser.find_elements("id", "cs-map")
    browser.find_element("css selector", 'th[data-key="energy"]').click()
    first = browser.find_element("css selector", "#crystals tbody tr td:nth-child(6)").text
    energies = [float(r.find_elements("tag name", "td")[5].text) for r in rows]
    assert float(first) == min(energies)
    assert _select(browser, 0) and _colours_drawn(browser) > 1
