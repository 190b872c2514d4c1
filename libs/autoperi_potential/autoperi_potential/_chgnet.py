"""Loading the pretrained CHGNet once per process, and which crystals it may be asked to score.

CHGNet (chgnet package, pretrained model `MODEL_NAME`, loaded offline with `CHGNet.load()`) is
meant to run in worker processes of its own (its ~2.2 GB peak memory is not returned to the
operating system): a worker calls `load_chgnet(num_threads)` once, then `loaded_model()`.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

MODEL_NAME = "0.3.0"
FEATURE_DIM = 64  # the crystal feature (pooled atom features before the energy read-out)
MAX_ATOMS = 200
MIN_VOLUME_PER_ATOM = 1.0  # A^3
_MODEL = None


def load_chgnet(num_threads: int = 1):
    """Load CHGNet `MODEL_NAME` on the CPU into this process (once; later calls return it) with
    `num_threads` torch threads, warnings and CHGNet's prints silenced. Usable as a process-pool
    initializer."""
    import warnings

    import torch

    global _MODEL
    warnings.filterwarnings("ignore")
    torch.set_num_threads(num_threads)
    if _MODEL is None:
        from chgnet.model import CHGNet

        with contextlib.redirect_stdout(io.StringIO()):
            _MODEL = CHGNet.load(model_name=MODEL_NAME, use_device="cpu", verbose=False)
    return _MODEL


def loaded_model():
    """The CHGNet that `load_chgnet` loaded in this process (RuntimeError before)."""
    if _MODEL is None:
        raise RuntimeError("CHGNet is not loaded in this process: call load_chgnet()")
    return _MODEL


def scorable(lattice: np.ndarray, num_atoms: int) -> bool:
    """True for a cell CHGNet is asked to score: 1..MAX_ATOMS atoms and at least
    MIN_VOLUME_PER_ATOM A^3 per atom (bounds memory on pathological samples)."""
    volume = abs(float(np.linalg.det(lattice)))
    return 0 < num_atoms <= MAX_ATOMS and volume / num_atoms >= MIN_VOLUME_PER_ATOM


def chgnet_version() -> str:
    """`<model> (chgnet <package version>)`, how results name the potential."""
    import chgnet

    return f"{MODEL_NAME} (chgnet {chgnet.__version__})"
