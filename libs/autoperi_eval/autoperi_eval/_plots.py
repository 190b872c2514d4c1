"""PNG figures of an evaluation (matplotlib, Agg backend): distributions against the reference
and pictures of a few sample structures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._structs import SampleRecord


def figure(width: float = 5.0, height: float = 3.5):  # -> (Figure, Axes)
    """A matplotlib (Figure, Axes) of `width` x `height` inches on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    return fig, fig.add_subplot(1, 1, 1)


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def histogram(samples: np.ndarray, reference: np.ndarray, xlabel: str, path: Path) -> Path:
    """Overlaid density histograms of samples and reference (shared bins)."""
    fig, ax = figure()
    a, b = _finite(samples), _finite(reference)
    both = np.concatenate([a, b])
    bins = np.histogram_bin_edges(both, bins=50) if len(both) else 10
    for values, label in ((b, "reference"), (a, "samples")):
        if len(values):
            ax.hist(values, bins=bins, density=True, alpha=0.5, label=f"{label} (n={len(values)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return path


def bars(
    samples: np.ndarray, reference: np.ndarray, xlabel: str, path: Path, top: int = 25
) -> Path:
    """Side-by-side bars of the shares of integer categories (the `top` most frequent)."""
    fig, ax = figure(7.0 if top > 10 else 5.0)
    a, b = np.asarray(samples, dtype=np.int64), np.asarray(reference, dtype=np.int64)
    values, counts = np.unique(np.concatenate([a, b]), return_counts=True)
    keep = np.sort(values[np.argsort(-counts)[:top]])
    x = np.arange(len(keep))
    share_a = [(a == v).mean() if len(a) else 0 for v in keep]
    share_b = [(b == v).mean() if len(b) else 0 for v in keep]
    ax.bar(x - 0.2, share_b, 0.4, label=f"reference (n={len(b)})")
    ax.bar(x + 0.2, share_a, 0.4, label=f"samples (n={len(a)})")
    ax.set_xticks(x, [str(v) for v in keep], rotation=90 if len(keep) > 10 else 0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return path


def structure_pictures(records: Sequence[SampleRecord], path: Path, n: int = 6) -> Path | None:
    """Pictures of up to `n` structures (ASE's plot_atoms, slightly rotated view)."""
    from ase.visualize.plot import plot_atoms
    from pymatgen.io.ase import AseAtomsAdaptor

    chosen = [r for r in records if r.structure is not None][:n]
    if not chosen:
        return None
    fig, _ = figure(3.0 * min(len(chosen), 3), 3.2 * ((len(chosen) + 2) // 3))
    fig.clear()
    for k, record in enumerate(chosen):
        ax = fig.add_subplot((len(chosen) + 2) // 3, min(len(chosen), 3), k + 1)
        atoms = AseAtomsAdaptor.get_atoms(record.structure)
        plot_atoms(atoms, ax, rotation="10x,20y,0z", radii=0.4)
        ax.set_title(f"{record.id}: {record.structure.composition.reduced_formula}", fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path)
    return path


def report_figures(
    name: str,
    out_dir: Path,
    columns: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    records: Sequence[SampleRecord],
) -> dict[str, str]:
    """All figures for one report; returns {figure: file name}."""
    files: dict[str, Path | None] = {}
    subset = columns.get("in_property_subset", columns["valid"])
    files["density"] = histogram(
        columns["density"][subset],
        reference["density"],
        "density (g/cm$^3$)",
        out_dir / f"{name}_density.png",
    )
    files["n_elem"] = bars(
        columns["n_elem"][subset],
        reference["n_elem"],
        "number of elements",
        out_dir / f"{name}_n_elem.png",
        top=10,
    )
    if "energy_sp" in columns and "energy" in reference:
        files["energy"] = histogram(
            columns["energy_sp"][subset],
            reference["energy"],
            "CHGNet energy (eV/atom)",
            out_dir / f"{name}_energy.png",
        )
    if "spacegroup" in columns and "spacegroup" in reference:
        spg = columns["spacegroup"][columns["spacegroup"] > 0]
        files["spacegroups"] = bars(
            spg, reference["spacegroup"], "space group", out_dir / f"{name}_spacegroups.png"
        )
    if "rms" in columns:
        files["rms"] = histogram(
            columns["rms"], np.zeros(0), "normalised RMS (matched)", out_dir / f"{name}_rms.png"
        )
    valid = [records[i] for i in np.flatnonzero(columns["valid"])]
    files["structures"] = structure_pictures(valid, out_dir / f"{name}_structures.png")
    return {k: p.name for k, p in files.items() if p is not None}
