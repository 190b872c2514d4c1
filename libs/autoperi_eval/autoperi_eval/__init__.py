"""AutoPeri's evaluation suite: the CDVAE / DiffCSP protocol (validity, coverage, property
distances, CSP match rate) and beyond it (CHGNet stability and S.U.N., symmetry, Frechet distance),
with per-structure output, reports and figures.

Entry point: `evaluate(samples, "perov_5:test", task="dng" | "csp", name=...)`.
"""

from ._cache import Cache, CacheStats, default_cache_dir
from ._chgnet import RelaxSettings
from ._config import EvalSettings, Task
from ._coverage import COV_CUTOFFS, Coverage, compute_coverage
from ._elemental import (
    elemental_energies,
    elemental_reference_rows,
    elements_without_reference,
    reference_state,
)
from ._evaluate import evaluate
from ._fingerprints import compute_fingerprints, fingerprint_arrays, standardise_comp
from ._hull import SYNTHETIC_NAME, Hull, chemsys
from ._hull_reference import (
    HullReference,
    cached_rows,
    hull_document,
    potential_protocol,
    read_json_document,
    reference_rows,
    seed_relaxations,
    write_json_document,
)
from ._io import (
    EvalInputError,
    load_samples,
    parse_reference,
    write_samples_json,
)
from ._match import CSP_MATCHER, match_metrics, rms_pair
from ._novelty import novelty, uniqueness
from ._parallel import Pool, ProgressFn
from ._perturb import perturb
from ._plots import figure, structure_pictures
from ._properties import frechet_distance, w1
from ._report import EvalReport
from ._structs import SampleRecord, structure_key
from ._validity import (
    StructuralCheck,
    composition_valid,
    reduced_composition,
    smact_validity,
    structural_check,
)

__all__ = [
    "COV_CUTOFFS",
    "CSP_MATCHER",
    "SYNTHETIC_NAME",
    "Cache",
    "CacheStats",
    "Coverage",
    "EvalInputError",
    "EvalReport",
    "EvalSettings",
    "Hull",
    "HullReference",
    "Pool",
    "ProgressFn",
    "RelaxSettings",
    "SampleRecord",
    "StructuralCheck",
    "Task",
    "cached_rows",
    "chemsys",
    "composition_valid",
    "compute_coverage",
    "compute_fingerprints",
    "default_cache_dir",
    "elemental_energies",
    "elemental_reference_rows",
    "elements_without_reference",
    "evaluate",
    "figure",
    "fingerprint_arrays",
    "frechet_distance",
    "hull_document",
    "load_samples",
    "match_metrics",
    "novelty",
    "parse_reference",
    "perturb",
    "potential_protocol",
    "read_json_document",
    "reduced_composition",
    "reference_rows",
    "reference_state",
    "rms_pair",
    "seed_relaxations",
    "smact_validity",
    "standardise_comp",
    "structural_check",
    "structure_key",
    "structure_pictures",
    "uniqueness",
    "w1",
    "write_json_document",
    "write_samples_json",
]
