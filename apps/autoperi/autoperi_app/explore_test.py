"""`autoperi explore` without a browser: what each source reads as, the page data, escaping of
untrusted text, and the one-line errors for bad input."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from xtal import Crystal

from autoperi_app._errors import UserError
from autoperi_app._explore_data import element_colour, page_data
from autoperi_app._explore_load import load_entries
from autoperi_app._explore_page import render_page, script_json
from autoperi_app.explore import build_page

REPO = Path(__file__).resolve().parents[3]
DEMO_LOOP = REPO / "reports" / "demo" / "loop"


def _nacl(**meta) -> Crystal:
    return Crystal([[5.64, 0, 0], [0, 5.64, 0], [0, 0, 5.64]],
                   [[0, 0, 0], [0.5, 0.5, 0.5]], [11, 17], **meta)  # fmt: skip


def _samples(path: Path, items: list[dict]) -> Path:
    path.write_text(json.dumps({"checkpoint": "test", "crystals": items}))
    return path


def _item(crystal: Crystal, **properties) -> dict:
    return {
        "id": crystal.id or "0",
        "lattice": crystal.lattice.tolist(),
        "frac_coords": crystal.frac_coords.tolist(),
        "atomic_numbers": crystal.atomic_numbers.tolist(),
        "properties": properties,
    }


def test_loop_report_reads_each_rounds_selection_with_its_energies():
    kind, entries = load_entries(DEMO_LOOP)
    journal = json.loads((DEMO_LOOP / "journal.json").read_text())
    assert kind == "loop report"
    assert len(entries) == sum(len(r.get("selected", [])) for r in journal["rounds"])
    scores = {r["index"]: r for r in json.loads((DEMO_LOOP / "round-1.json").read_text())}
    for entry in entries:
        row = scores[int(entry.key.split("#")[1])]
        assert row["formula"] == entry.crystal.formula
        assert entry.energy_per_atom == row["energy_per_atom"]
        assert entry.round == 1 and entry.e_above_hull is None  # the demo's scorer has no hull


def test_page_data_rows_space_groups_and_map(tmp_path):
    cubic = _nacl(id="rocksalt")
    path = _samples(tmp_path / "samples.json", [_item(cubic, energy_per_atom=-3.5)])
    _, entries = load_entries(path)
    data = page_data(entries, "t")
    row = data["rows"][0]
    assert (row["formula"], row["elements"], row["natoms"]) == ("NaCl", ["Cl", "Na"], 2)
    assert (row["spacegroup"], row["sg_number"]) == ("Pm-3m", 221)  # CsCl-type 2-atom cell
    assert row["energy"] == -3.5 and row["e_hull"] is None
    assert data["legend"] == {"Cl": element_colour("Cl"), "Na": element_colour("Na")}
    assert element_colour("Na") == "#ab5cf2"  # Jmol, what chemiscope draws
    structure = data["dataset"]["structures"][0]
    assert structure["names"] == ["Na", "Cl"] and structure["x"] == [0.0, 2.82]
    assert data["dataset"]["settings"]["map"]["y"]["property"] == "energy per atom"


def test_untrusted_text_cannot_leave_the_json_block(tmp_path):
    evil = "</script><img src=x onerror=alert(1)>&"
    path = _samples(tmp_path / "s.json", [_item(_nacl(id=evil))])
    _, entries = load_entries(path)
    page = render_page(page_data(entries, evil), evil)
    assert "<img src=x" not in page
    assert page.count("</script>") == 3  # the bundle, the data, the page script
    data = page.split('type="application/json">')[1].split("</script>")[0]
    assert json.loads(data)["rows"][0]["key"] == evil
    assert script_json("<>&\u2028") == '"\\u003c\\u003e\\u0026\\u2028"'


def test_cif_folder_and_default_out(tmp_path):
    (tmp_path / "a.cif").write_text(_nacl().to_cif())
    (tmp_path / "notes.txt").write_text("not read")
    page = build_page(tmp_path)
    assert page == tmp_path / "explore.html"
    html = page.read_text()
    assert "https://" not in html.split("<script>")[0]  # no stylesheet or script fetched
    assert '"formula":"NaCl"' in html and 'id="cs-map"' not in html  # no energies, no plot
    kind, entries = load_entries(tmp_path / "a.cif")
    assert kind == "cif file" and [e.crystal.formula for e in entries] == ["NaCl"]


def _explore(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "400"}  # one line is one line, not wrapped by the console
    return subprocess.run([sys.executable, "-m", "autoperi_app.main", "explore", *args],
                          capture_output=True, text=True, timeout=120, env=env)  # fmt: skip


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    result = _explore(str(tmp_path / "missing.json"))
    assert result.returncode == 2, result.stderr
    assert "missing.json does not exist" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cifs/binary.cif", b"\x00\x01data_x", "binary.cif is not a crystal file"),
        ("words.json", b"hello", "words.json is not a samples JSON"),
        ("list.json", b'{"crystals": [{"lattice": 1}]}', "crystal 0 is not a crystal record"),
        ("latin1.json", "caf\u00e9".encode("latin-1"), "latin1.json is not UTF-8 text"),
        ("empty/", b"", "holds no .cif file"),
    ],
)
def test_bad_input_names_the_problem(tmp_path, name, content, message):
    target = tmp_path / name
    target.parent.mkdir(exist_ok=True)
    if name.endswith("/"):
        target.mkdir()
    else:
        target.write_bytes(content)
    source = target.parent if name.startswith("cifs/") else target
    with pytest.raises(UserError, match=re.escape(message)):
        load_entries(source)


def test_demo_writes_the_loop_selection_page_and_links_it(tmp_path):
    from autoperi_app._demo_report import write_explorer, write_summary

    assert write_explorer(tmp_path, {}) is None  # no loop round: no page
    shutil.copytree(DEMO_LOOP, tmp_path / "loop")
    figures = {"out_dir": str(tmp_path), "loop": {"targets": [], "round": {}}}
    page = write_explorer(tmp_path, figures)
    assert page == tmp_path / "explore.html" and '"has_energy":true' in page.read_text()
    readme = write_summary(tmp_path, figures, {"loop": 1.0}).read_text()
    assert "[explore.html](explore.html)" in readme
