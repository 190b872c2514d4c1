"""The CHGNet worker process: batches of crystals in, `Scores` out.

Runs only in a child process started by `scorer_svc._pool` (CHGNet's ~2.2 GB peak memory is not
returned to the operating system, so the server process stays small, and native crashes of
spglib or pymatgen kill only the worker). Protocol over a multiprocessing Pipe: the worker sends
("ready", None) once CHGNet is loaded, then answers each (kind, args) request with ("ok", result)
or ("error", message); kinds are the keys of `HANDLERS`.

Per batch (`score_batch`): validity (CDVAE rules of autoperi_eval) and content hash of the input,
optional FIRE relaxation with the Frechet cell filter (one structure at a time), then one batched
CHGNet call over the scored structures (task "e" without autograd, or "efs" in one backward
pass when forces or stress are asked for, see `_chgnet`), then the space group (`_symmetry`:
spglib, moyopy or none). The scorer's CHGNet builds its graphs with arrays (`_graph`) and runs
factorised conv layers (`_factorised`), both checked against CHGNet's own path. A
failure of one structure becomes its `Scores.error`; a failure of the batched prediction falls
back to one structure at a time so that only the culprit fails.
"""

import contextlib
import io
import math
import os
import sys
import time
import warnings
from multiprocessing.connection import Connection

import numpy as np
from autoperi_data import CrystalArrays

from scorer_svc._efs import predict_efs
from scorer_svc._factorised import factorised
from scorer_svc._graph import FORWARD_EDGES, ArrayGraphConverter, edge_groups
from scorer_svc._model import Problem, ScoreOptions, Scores
from scorer_svc._symmetry import SymmetryCache, space_group

MAX_VOLUME_PER_ATOM = 1000.0  # A^3: a relaxation that swells past this has diverged
_RELAXER = None
_SCORING_MODEL = None
_BLAS_LIMITS = None
_SYMMETRY = SymmetryCache()  # of unrelaxed crystals (its size is set by `serve`)


def serve(conn: Connection, num_threads: int, symmetry_cache_size: int = 0) -> None:
    """Load CHGNet with `num_threads` torch (and BLAS) threads, then answer requests until
    EOF; the space groups of up to `symmetry_cache_size` unrelaxed crystals are kept by content
    hash (spglib's search is the scorer's largest cost after CHGNet)."""
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - CHGNet prints; the pipe is the protocol
    warnings.filterwarnings("ignore")
    import torch
    from threadpoolctl import threadpool_limits

    global _BLAS_LIMITS
    _SYMMETRY.size = symmetry_cache_size
    _BLAS_LIMITS = threadpool_limits(num_threads)  # numpy/scipy BLAS: 3x3 solves in FIRE
    torch.set_num_interop_threads(num_threads)
    from autoperi_potential import load_chgnet

    load_chgnet(num_threads)
    conn.send(("ready", None))
    while True:
        try:
            kind, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("ok", HANDLERS[kind](*args)))
        except Exception as exc:  # reported to the caller, the worker lives on
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _model():
    """CHGNet as loaded (the benchmark's baseline and the tests' reference)."""
    from autoperi_potential import loaded_model

    return loaded_model()


def _scoring_model():
    """What the scorer runs: CHGNet with its conv layers factorised (`scorer_svc._factorised`)
    and its graphs built by `scorer_svc._graph.ArrayGraphConverter`."""
    global _SCORING_MODEL
    if _SCORING_MODEL is None:
        model = factorised(_model())
        model.graph_converter = ArrayGraphConverter(model.graph_converter)
        _SCORING_MODEL = model
    return _SCORING_MODEL


def score_batch(items: list[CrystalArrays], options: ScoreOptions, batch_size: int) -> list[Scores]:
    """Scores of `items` (index = position in `items`), see the module docstring."""
    results = [Scores(index=i) for i in range(len(items))]
    structures = {}
    for i, item in enumerate(items):
        structures[i] = _check(item, options, results[i])
    structures = {i: s for i, s in structures.items() if results[i].error is None}
    if options.relax:
        structures = {i: _relax(s, options, results[i]) for i, s in structures.items()}
        structures = {i: s for i, s in structures.items() if results[i].error is None}
    task = "efs" if options.include_forces or options.include_stress else "e"
    _predict(structures, results, batch_size, task)
    for i, structure in structures.items():
        if results[i].error is None:
            key = "" if options.relax else results[i].content_hash  # hash of the input
            found = _SYMMETRY.space_group(structure, options.symprec, options.symmetry, key)
            results[i].space_group_number, results[i].space_group_symbol = found
    return results


def _fail(result: Scores, code: str, message: str) -> None:
    result.error = Problem(code, message)


def _check(item: CrystalArrays, options: ScoreOptions, result: Scores):
    """The input's pymatgen Structure; validity flags and content hash into `result`."""
    from autoperi_eval import composition_valid, structural_check
    from xtal import Crystal

    lattice, numbers, frac = item
    try:
        structure = item.to_pymatgen()
        check = structural_check(structure, options.min_valid_distance)
        result.content_hash = Crystal(lattice, frac, numbers).content_hash()
    except Exception as exc:  # a cell pymatgen or the canonicaliser cannot handle
        _fail(result, "invalid_structure", f"the structure cannot be built: {exc}")
        return None
    result.structure_valid = check.valid
    result.min_distance = float(check.min_distance)
    result.composition_valid = bool(composition_valid(numbers))
    return structure


def _relax(structure, options: ScoreOptions, result: Scores):
    """The relaxed structure (FIRE + FrechetCellFilter); steps and energies into `result`."""
    global _RELAXER
    if _RELAXER is None:
        from chgnet.model import StructOptimizer

        with contextlib.redirect_stdout(io.StringIO()):
            _RELAXER = StructOptimizer(_scoring_model(), "FIRE", on_isolated_atoms="error")
    n = len(structure)
    try:
        out = _RELAXER.relax(
            structure, fmax=options.fmax, steps=options.max_relax_steps, relax_cell=True,
            ase_filter="FrechetCellFilter", verbose=False, assign_magmoms=False,
        )  # fmt: skip
    except Exception as exc:
        _fail(result, "relax_failed", f"the relaxation failed: {type(exc).__name__}: {exc}")
        return None
    energies = out["trajectory"].energies  # initial, one per step, and the final state again
    final = out["final_structure"]
    result.unrelaxed_energy_per_atom = float(energies[0]) / n
    result.relax_steps = max(len(energies) - 2, 0)
    result.relax_converged = result.relax_steps < options.max_relax_steps
    volume = final.volume / n
    finite = np.isfinite(final.lattice.matrix).all() and np.isfinite(final.frac_coords).all()
    if not (finite and math.isfinite(energies[-1]) and 1e-3 < volume < MAX_VOLUME_PER_ATOM):
        _fail(result, "relax_diverged", f"the relaxation diverged ({volume:.4g} A^3 per atom)")
        return None
    return final


def _predict(structures: dict, results: list[Scores], batch_size: int, task: str) -> None:
    """Energy (task "e"), forces and stress ("efs") of `structures` ({index: Structure}) into
    `results`. Forces and stress cost two backward passes, which dominate CHGNet's time on a
    CPU, so they are computed only when asked for."""
    if not structures:
        return
    model = _scoring_model()
    keys = list(structures)
    try:
        preds = _chgnet(model, [structures[i] for i in keys], task, batch_size)
    except Exception:  # find the culprit: one structure at a time
        preds = [_predict_one(model, structures[i], results[i], task) for i in keys]
    for i, pred in zip(keys, preds, strict=True):
        if pred is not None:
            _store(structures[i], pred, results[i])


def _chgnet(model, structures: list, task: str, batch_size: int) -> list[dict]:
    """`model`'s predictions of `structures` (the values of `predict_structure`): task "e"
    under `torch.no_grad` (CHGNet differentiates only for forces and stress, and recording the
    graph costs ~20% of an energy-only forward on a CPU); task "efs" in one backward pass
    (`_efs.predict_efs`)."""
    graphs = [model.graph_converter(s) for s in structures]
    if task == "efs":
        return predict_efs(model, graphs, batch_size)
    return predict_energy(model, graphs, task, batch_size)


def predict_energy(model, graphs: list, task: str, batch_size: int) -> list[dict]:
    """`model.predict_graph(task=task)` of `graphs` without autograd, in forwards of at most
    `batch_size` graphs and `_graph.FORWARD_EDGES` edges; one dict per graph."""
    import torch

    out: list[dict] = []
    with torch.no_grad():
        for group in edge_groups(graphs, FORWARD_EDGES, batch_size):
            preds = model.predict_graph(group, task=task, batch_size=len(group))
            out.extend([preds] if isinstance(preds, dict) else preds)
    return out


def _predict_one(model, structure, result: Scores, task: str):
    try:
        return _chgnet(model, [structure], task, 1)[0]
    except Exception as exc:
        _fail(result, "potential_failed", f"CHGNet could not score it: {exc}")
        return None


def _store(structure, pred: dict, result: Scores) -> None:
    energy = float(pred["e"])
    forces = np.asarray(pred.get("f", np.zeros((0, 3))), dtype=float).reshape(-1, 3)  # eV/A
    s = np.asarray(pred.get("s", np.zeros((3, 3))), dtype=float).reshape(3, 3)  # GPa
    if not (math.isfinite(energy) and np.isfinite(forces).all() and np.isfinite(s).all()):
        _fail(result, "non_finite", "CHGNet returned a non-finite energy, force or stress")
        return
    result.energy_per_atom = energy
    if "f" in pred:
        result.forces = forces  # (n, 3)
        result.stress = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    result.lattice = np.array(structure.lattice.matrix)
    result.frac_coords = np.array(structure.frac_coords)


def predict_each(items: list[CrystalArrays], task: str) -> list[float]:
    """Energies per atom of `items`, one `predict_structure(task=task)` call each (the
    baseline of the benchmark)."""
    model = _model()
    return [float(model.predict_structure(it.to_pymatgen(), task=task)["e"]) for it in items]


def predict_batched(items: list[CrystalArrays], batch_size: int, task: str) -> list[float]:
    """Energies per atom of `items` from batched `predict_structure(task=task)` calls."""
    structures = [it.to_pymatgen() for it in items]
    preds = _model().predict_structure(structures, task=task, batch_size=batch_size)
    preds = [preds] if isinstance(preds, dict) else preds
    return [float(p["e"]) for p in preds]


def stage_times(items: list[CrystalArrays], task: str, batch_size: int) -> dict[str, float]:
    """CPU milliseconds per crystal of each stage of `score_batch` on `items` (no relaxation),
    for the benchmark's profile: input checks (structure, validity, content hash), graph
    conversion and the batched forward as the scorer runs them and as plain CHGNet does, the
    space group with each backend, and pickling the results for the pipe."""
    import pickle

    model, options = _model(), ScoreOptions()
    clock, out = time.process_time, {}
    start = clock()
    results = [Scores(index=i) for i in range(len(items))]
    structures = [_check(item, options, r) for item, r in zip(items, results, strict=True)]
    out["checks_validity_hash"] = clock() - start
    start = clock()
    graphs = [model.graph_converter(s) for s in structures]
    out["graph_conversion_chgnet"] = clock() - start
    start = clock()
    graphs = [_scoring_model().graph_converter(s) for s in structures]
    out["graph_conversion_as_scorer"] = clock() - start
    start = clock()
    if task == "efs":
        predict_efs(_scoring_model(), graphs, batch_size)
    else:
        predict_energy(_scoring_model(), graphs, task, batch_size)
    out["forward_as_scorer"] = clock() - start
    start = clock()
    model.predict_graph(graphs, task=task, batch_size=batch_size)
    out["forward_plain_predict_graph"] = clock() - start
    for backend in ("spglib", "moyopy"):
        start = clock()
        for structure in structures:
            space_group(structure, options.symprec, backend)
        out[f"space_group_{backend}"] = clock() - start
    per_crystal = {k: round(1000 * v / len(items), 2) for k, v in out.items()}
    scored = score_batch(items[:batch_size], ScoreOptions(include_forces=task != "e"), batch_size)
    start = clock()
    pickle.loads(pickle.dumps(scored))
    per_crystal["pickle_results"] = round(1000 * (clock() - start) / len(scored), 3)
    return per_crystal


def reference_efs(items: list[CrystalArrays]) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(energy per atom, forces (n, 3), stress (3, 3) GPa) of `items` from CHGNet's own
    `predict_structure(task="efs")`, one call each (the reference for tests and the bench)."""
    preds = [_model().predict_structure(it.to_pymatgen(), task="efs") for it in items]
    return [(float(p["e"]), np.asarray(p["f"]), np.asarray(p["s"])) for p in preds]


def cpu_time() -> float:
    """CPU seconds this worker has used (the benchmark's measure on a shared machine)."""
    return time.process_time()


def getenv(name: str) -> str | None:
    """This worker's value of an environment variable (for tests of the pool's settings)."""
    return os.environ.get(name)


def crash() -> None:
    """Kill this worker the way a native crash would (for tests of the pool's recovery)."""
    os._exit(139)


HANDLERS = {
    "score": score_batch,
    "predict_each": predict_each,
    "predict_batched": predict_batched,
    "cpu_time": cpu_time,
    "stage_times": stage_times,
    "reference_efs": reference_efs,
    "getenv": getenv,
    "crash": crash,
}
