"""Symmetry tests of the backbone and of the flow's velocity fields, via the shared kit.

Each test class only supplies a backbone config; the kit checks every group action.
"""

from __future__ import annotations

import torch
from periodic import keys

from autoperi_model._backbone import TYPE_LOGITS, Backbone
from autoperi_model._config import BackboneConfig, Config
from autoperi_model._flow import build_model
from autoperi_model.testing import EquivarianceSuite, FieldKind

SMALL = BackboneConfig(
    hidden=32, layers=2, num_rbf=8, time_dim=8, cutoff=5.0, max_neighbors=12, lattice_vectors=14
)


class _BackboneSuite(EquivarianceSuite):
    config: BackboneConfig = SMALL

    def model_fn(self, dtype):
        torch.manual_seed(0)
        net = Backbone(self.config).to(dtype)
        for param in net.parameters():  # zero-initialised layers would hide broken symmetries
            param.data.add_(0.05 * torch.randn_like(param))

        def fn(batch):
            return net(batch, 0.15 * batch.num_atoms.to(dtype))

        return fn, {
            keys.FRAC_COORDS: FieldKind.ATOM_FRAC_VECTOR,
            keys.LATTICE: FieldKind.CRYSTAL_CART_SYMMETRIC,
            TYPE_LOGITS: FieldKind.ATOM_INVARIANT,
        }


class TestBackboneSymmetry(_BackboneSuite):
    config = SMALL


class TestBackboneWithoutLatticeFeatures(_BackboneSuite):
    config = SMALL.model_copy(update={"lattice_vectors": 0, "max_neighbors": 30})


class TestFlowVelocitySymmetry(EquivarianceSuite):
    def model_fn(self, dtype):
        torch.manual_seed(1)
        model = build_model(Config(backbone=SMALL), volume_per_atom=12.0).to(dtype)
        for param in model.parameters():
            param.data.add_(0.05 * torch.randn_like(param))

        def fn(batch):
            return model.velocities(batch, torch.full((batch.num_crystals,), 0.5, dtype=dtype))

        return fn, {
            keys.FRAC_COORDS: FieldKind.ATOM_FRAC_VECTOR,
            keys.LATTICE: FieldKind.CRYSTAL_CART_SYMMETRIC,
        }
