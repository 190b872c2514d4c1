"""Energies, forces and stress from CHGNet in one backward pass (the scorer's "efs" path).

CHGNet's own `predict_graph(task="efs")` differentiates twice (forces, then stress), both with
`create_graph=True` (kept for training losses), which dominates its CPU time. Inference needs
one first-order pass: here the energy is differentiated once, for the atom positions and the
strains together, without recording a graph of the gradients (~2x less CPU than CHGNet's for a
batch of mp_20 crystals). Torch then takes other backward kernels, so forces move by ~4e-5 eV/A
and stress by ~3e-4 GPa from CHGNet's (float32 rounding), and with the scorer's factorised layers
by up to ~1.2e-4 eV/A and ~1.2e-3 GPa (100 Perov-5 test crystals; factorised_test). Same model
code (`CHGNet._compute`, chgnet 0.4.2), same units and signs: e eV/atom, f (n, 3) eV/A,
s (3, 3) GPa.
"""

from collections.abc import Sequence

import numpy as np

from scorer_svc._graph import FORWARD_EDGES, edge_groups

_EV_PER_A3_IN_GPA = 160.21766208  # CHGNet's conversion of stress


def predict_efs(model, graphs: Sequence, batch_size: int) -> list[dict[str, np.ndarray]]:
    """[{"e": (), "f": (n, 3), "s": (3, 3)}] of CHGNet CrystalGraphs, in forwards of at most
    `batch_size` graphs and `_graph.FORWARD_EDGES` edges."""
    out: list[dict[str, np.ndarray]] = []
    for group in edge_groups(list(graphs), FORWARD_EDGES, batch_size):
        out.extend(_batch(model, group))
    return out


def _batch(model, graphs: list) -> list[dict[str, np.ndarray]]:
    import torch
    from chgnet.graph.crystalgraph import TORCH_DTYPE
    from chgnet.model.model import BatchedGraph

    model.eval()
    comp = 0 if model.composition_model is None else model.composition_model(graphs)
    batched = BatchedGraph.from_graphs(
        graphs,
        bond_basis_expansion=model.bond_basis_expansion,
        angle_basis_expansion=model.angle_basis_expansion,
        compute_stress=True,
    )
    prediction = model._compute(batched)
    energy = prediction["e"]  # per atom when the model is intensive (CHGNet 0.3.0 is)
    # d(total energy): the weight n on e = E / n reaches E as exactly 1, as in CHGNet's sum()
    weights = prediction["atoms_per_graph"].to(TORCH_DTYPE) if model.is_intensive else None
    leaves = [*batched.atom_positions, *batched.strains]
    weights = weights if weights is not None else torch.ones_like(energy)
    grads = torch.autograd.grad(energy, leaves, grad_outputs=weights)
    n = len(graphs)
    scale = 1 / batched.volumes * _EV_PER_A3_IN_GPA
    energy = (energy + comp).detach()
    return [
        {
            "e": energy[k].numpy(),
            "f": (-1 * grads[k]).numpy(),
            "s": (grads[n + k] * scale[k]).numpy(),
        }
        for k in range(n)
    ]
