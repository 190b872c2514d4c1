"""CDVAE's structure and composition fingerprints for coverage (SCIENCE 5.2).

Structure: matminer `CrystalNNFingerprint.from_preset("ops")` (CrystalNN with its default
arguments, as CDVAE constructs it) for every site, averaged over sites -> (61,).
Composition: matminer `ElementProperty.from_preset("magpie")` of the cell composition -> (132,),
standardised with CDVAE's fixed means and stds (`data/cdvae_comp_scaler.json`), NaN -> 0 after
scaling (CDVAE's `StandardScaler(replace_nan_token=0.)`).
Protocol source: txie-93/cdvae `scripts/compute_metrics.py` (`Crystal.get_fingerprints`) and
`scripts/eval_utils.py` (`CompScaler`). A crystal whose fingerprint raises is dropped from
coverage and counted invalid, as in CDVAE.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Sequence
from importlib import resources

import numpy as np
from autoperi_data import CrystalArrays

from ._cache import Cache, Value
from ._parallel import Pool, ProgressFn, pool_compute
from ._structs import structure_key

STRUCT_DIM = 61
COMP_DIM = 132


@functools.lru_cache(maxsize=1)
def _featurizers():  # -> (CrystalNNFingerprint, ElementProperty)
    from matminer.featurizers.composition.composite import ElementProperty
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

    return CrystalNNFingerprint.from_preset("ops"), ElementProperty.from_preset("magpie")


@functools.lru_cache(maxsize=1)
def fingerprint_namespace() -> str:
    """Cache namespace: fingerprint definition plus the matminer and pymatgen versions."""
    import matminer
    import pymatgen.core

    return (
        f"fp/crystalnn-ops+magpie/matminer-{matminer.__version__}/pmg-{pymatgen.core.__version__}"
    )


def fingerprint_arrays(payload: CrystalArrays) -> Value:
    """Worker: {"struct": (61,) site-averaged CrystalNN "ops", "comp": (132,) raw magpie,
    "ok": () bool}. `ok` is False when CrystalNN raises or returns a non-finite value."""
    from pymatgen.core import Composition

    crystal_fp, comp_fp = _featurizers()
    structure = payload.to_pymatgen()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = np.asarray(comp_fp.featurize(Composition(structure.composition)), dtype=float)
        try:
            sites = [crystal_fp.featurize(structure, i) for i in range(len(structure))]
            struct = np.asarray(sites, dtype=float).mean(axis=0)  # (61,)
            ok = bool(np.isfinite(struct).all())
        except Exception:
            struct, ok = np.full(STRUCT_DIM, np.nan), False
    return {"struct": struct, "comp": comp, "ok": np.array(ok)}


@functools.lru_cache(maxsize=1)
def comp_scaler() -> tuple[np.ndarray, np.ndarray]:
    """CDVAE's (means (132,), stds (132,)) for the magpie composition features."""
    text = resources.files("autoperi_eval").joinpath("data/cdvae_comp_scaler.json").read_text()
    data = json.loads(text)
    return np.asarray(data["means"], dtype=float), np.asarray(data["stds"], dtype=float)


def standardise_comp(raw: np.ndarray) -> np.ndarray:
    """(n, 132) raw magpie -> CDVAE-standardised features, NaN replaced by 0 after scaling."""
    means, stds = comp_scaler()
    scaled = (np.asarray(raw, dtype=float) - means) / stds
    return np.where(np.isnan(scaled), 0.0, scaled)


def compute_fingerprints(
    payloads: Sequence[CrystalArrays],
    cache: Cache,
    pool: Pool,
    *,
    label: str,
    progress: ProgressFn | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fingerprints of all payloads, from the cache where possible.

    Returns (struct (n, 61), standardised comp (n, 132), ok (n,) bool); rows with ok False hold
    NaN structure fingerprints. Cache statistics go to `cache.stats[label]`.
    """
    keys = [structure_key(p) for p in payloads]
    compute = pool_compute(pool, fingerprint_arrays, label, progress)
    values = cache.cached_compute(fingerprint_namespace(), label, keys, payloads, compute)
    if not values:
        return np.zeros((0, STRUCT_DIM)), np.zeros((0, COMP_DIM)), np.zeros(0, dtype=bool)
    struct = np.stack([v["struct"] for v in values])
    comp = standardise_comp(np.stack([v["comp"] for v in values]))
    ok = np.array([bool(v["ok"]) for v in values])
    return struct, comp, ok
