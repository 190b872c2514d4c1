"""The factorised CHGNet layers and the one-pass efs path against CHGNet's own predictions."""

import numpy as np
import pytest
import torch
from torch import nn

from scorer_svc._bench import load_split
from scorer_svc._efs import predict_efs
from scorer_svc._factorised import _GatedProjection, factorised
from scorer_svc._graph import edge_groups
from scorer_svc._worker import predict_energy


@pytest.fixture(scope="module")
def graphs(chgnet_model, data_dir):
    """CHGNet graphs of 8 Perov-5 and 16 MP-20 test crystals."""
    crystals = load_split("perov_5", 8) + load_split("mp_20", 16)
    return [chgnet_model.graph_converter(c.to_pymatgen()) for c in crystals]


@pytest.fixture(scope="module")
def fast(chgnet_model):
    return factorised(chgnet_model)


def test_energies_match_chgnet(chgnet_model, fast, graphs):
    with torch.no_grad():
        theirs = chgnet_model.predict_graph(graphs, task="e", batch_size=8)
        ours = fast.predict_graph(graphs, task="e", batch_size=8)
    e_theirs = np.array([float(p["e"]) for p in theirs])
    e_ours = np.array([float(p["e"]) for p in ours])
    np.testing.assert_allclose(e_ours, e_theirs, atol=1e-5, rtol=0)
    assert np.ptp(e_theirs) > 1.0  # the crystals differ: a constant output would fail above


def test_edge_groups_keep_order_and_limits(graphs):
    sizes = [len(g.atom_graph) for g in graphs]
    limit = int(np.median(sizes)) * 2
    runs = edge_groups(graphs, limit, max_graphs=3)
    assert [g for run in runs for g in run] == graphs
    for run in runs:
        edges = sum(len(g.atom_graph) for g in run)
        assert 1 <= len(run) <= 3 and (edges <= limit or len(run) == 1)
    assert any(
        len(run) == 1 and len(run[0].atom_graph) > limit for run in edge_groups(graphs, 1, 8)
    )
    assert len(edge_groups(graphs, 10**9, 8)) == 3


def test_energies_do_not_depend_on_the_forward_groups(fast, graphs):
    grouped = [float(p["e"]) for p in predict_energy(fast, graphs, "e", batch_size=16)]
    single = [float(p["e"]) for p in predict_energy(fast, graphs, "e", batch_size=1)]
    np.testing.assert_allclose(grouped, single, atol=2e-6, rtol=0)


@pytest.mark.parametrize("factorise", [False, True], ids=["chgnet", "factorised"])
def test_one_pass_efs_matches_chgnet(chgnet_model, fast, graphs, factorise):
    model = fast if factorise else chgnet_model
    ours = predict_efs(model, graphs, batch_size=8)
    theirs = chgnet_model.predict_graph(graphs, task="efs", batch_size=8)
    assert len(ours) == len(theirs) == len(graphs)
    for mine, pred in zip(ours, theirs, strict=True):
        assert mine["f"].shape == pred["f"].shape and mine["s"].shape == (3, 3)
        np.testing.assert_allclose(mine["e"], pred["e"], atol=1e-5, rtol=0)
        np.testing.assert_allclose(mine["f"], pred["f"], atol=2e-4, rtol=0)
        np.testing.assert_allclose(mine["s"], pred["s"], atol=2e-3, rtol=0)
    assert max(np.abs(p["f"]).max() for p in theirs) > 0.1  # forces that could disagree


def test_the_original_model_is_left_as_it_was(chgnet_model, fast):
    from chgnet.model.layers import AtomConv

    assert type(chgnet_model.atom_conv_layers[0]) is AtomConv
    assert type(fast.atom_conv_layers[0]) is not AtomConv
    assert fast.atom_embedding is chgnet_model.atom_embedding  # shared, not copied
    assert fast.mlp is chgnet_model.mlp


def test_gated_projection_equals_the_gated_mlp_on_the_concatenation(chgnet_model):
    gated = chgnet_model.bond_conv_layers[0].twoBody_bond
    projection = _GatedProjection(gated, [64, 64, 64, 64])
    generator = torch.Generator().manual_seed(0)
    tables = [torch.randn(n, 64, generator=generator) for n in (7, 7, 30, 5)]
    index = [torch.randint(0, n, (30,), generator=generator) for n in (7, 7)]
    index += [None, torch.randint(0, 5, (30,), generator=generator)]
    with torch.no_grad():
        ours = projection(list(zip(tables, index, strict=True)))
        rows = [t if i is None else t[i] for t, i in zip(tables, index, strict=True)]
        theirs = gated(torch.cat(rows, dim=1))
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="3 parts given, 4 expected"):
        projection(list(zip(tables, index, strict=True))[:3])


def test_layers_it_does_not_know_are_refused(chgnet_model):
    from chgnet.model.functions import GatedMLP

    with pytest.raises(TypeError, match="takes 256 inputs, not 192"):
        _GatedProjection(chgnet_model.bond_conv_layers[0].twoBody_bond, [64, 64, 64])
    with pytest.raises(TypeError, match="unsupported CHGNet gated MLP"):
        _GatedProjection(GatedMLP(8, 4, hidden_dim=[4, 4, 4], norm=None), [8])
    dropped = GatedMLP(8, 4, dropout=0.1, norm=None)
    with pytest.raises(TypeError, match="unsupported CHGNet gated MLP"):
        _GatedProjection(dropped, [8])
    assert isinstance(dropped.mlp_core.layers[0], nn.Dropout)
