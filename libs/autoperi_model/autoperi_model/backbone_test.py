"""Symmetry tests of the backbone and of the flow's velocity fields, via the shared kit.

Each test class only supplies a backbone config; the kit checks every group action.
"""

from __future__ import annotations

import torch
from periodic import keys

from autoperi_model._backbone import TYPE_LOGITS, Backbone
from autoperi_model._config import BackboneConfig, Config
from autoperi_model._flow import build_model
from autoperi_model._train import widened
from autoperi_model.testing import EquivarianceSuite, FieldKind, random_batch

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


class TestSmoothNeighbourSymmetry(_BackboneSuite):
    config = SMALL.model_copy(update={"smooth_neighbors": True})


class TestAngularSymmetry(_BackboneSuite):
    config = SMALL.model_copy(update={"smooth_neighbors": True, "angular_channels": 4})


def _field_along_a_path(config: BackboneConfig, steps: int = 400) -> torch.Tensor:
    """Coordinate field (steps, N, 3) while one atom of a random crystal moves in a line."""
    torch.manual_seed(0)
    net = Backbone(config).double()
    for param in net.parameters():
        param.data.add_(0.05 * torch.randn_like(param))
    batch = random_batch((6,), seed=3, dtype=torch.float64)
    out = []
    for s in torch.linspace(0.0, 0.3, steps, dtype=torch.float64):
        frac = batch.frac_coords.clone()
        frac[0] = frac[0] + s * torch.tensor([1.0, 0.4, 0.2], dtype=torch.float64)
        fields = net(
            batch.replace(frac_coords=frac % 1.0), torch.full((1,), 0.3, dtype=torch.float64)
        )
        out.append(fields[keys.FRAC_COORDS].detach())
    return torch.stack(out)


def test_smooth_neighbours_make_the_field_continuous_where_the_cap_jumps():
    """Along a path on which neighbours enter and leave each atom's K nearest, the hard cap's
    field jumps (some step changes it 30x more than a typical step) and the smooth one's
    does not."""
    capped = SMALL.model_copy(update={"max_neighbors": 4, "lattice_vectors": 0})
    jumps = {}
    for smooth in (False, True):
        field = _field_along_a_path(capped.model_copy(update={"smooth_neighbors": smooth}))
        step = (field[1:] - field[:-1]).abs().amax(dim=(1, 2))
        jumps[smooth] = float(step.max() / step.median())
    assert jumps[False] > 30
    assert jumps[True] < 10


def test_adding_angular_channels_to_a_trained_backbone_keeps_its_function():
    """A warm start pads the node updates' new input columns with zeros (`widened`), so the
    wider model computes exactly what the checkpoint did until training moves it."""
    base = SMALL.model_copy(update={"smooth_neighbors": True})
    torch.manual_seed(0)
    old = Backbone(base).double()
    for param in old.parameters():
        param.data.add_(0.05 * torch.randn_like(param))
    new = Backbone(base.model_copy(update={"angular_channels": 4})).double()
    result = new.load_state_dict(widened(old.state_dict(), new.state_dict()), strict=False)
    assert all(k.startswith("layers.") and ".angular." in k for k in result.missing_keys)
    batch = random_batch((2, 5), seed=7)
    t = torch.full((2,), 0.4, dtype=torch.float64)
    for key, value in old(batch, t).items():
        torch.testing.assert_close(new(batch, t)[key], value, atol=1e-12, rtol=0)
