"""FeatureStoreCore without gRPC: fingerprints, configs, lookups."""

import hashlib
import io
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from autoperi_eval import standardise_comp
from matminer.featurizers.composition.composite import ElementProperty
from storage import LocalObjectStore, LocalVersionStore
from svc_kit import InvalidInput

from featurestore_svc import FeatureRequest, FeatureStoreCore, resolve_config
from featurestore_svc.conftest import store_dataset

KINDS = ("structure_fingerprints", "composition_fingerprints")


def _load(shard: dict) -> dict:
    data = Path(urlsplit(shard["uri"]).path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == shard["sha256"]
    return torch.load(io.BytesIO(data), weights_only=True)


def test_fingerprints_are_built_and_stored(tmp_path, mp20_subset):
    crystals = mp20_subset[:3]
    objects = LocalObjectStore(tmp_path, durable=False)
    versions = LocalVersionStore(objects)
    commit = store_dataset(versions, "fp-set", crystals)
    core = FeatureStoreCore(objects, versions)
    request = FeatureRequest("fp-set", commit, resolve_config("", "{}"), KINDS)
    [future] = core.ensure(request)
    future.result(timeout=600)
    structure, composition = core.state(request).artifacts
    assert structure.state == composition.state == "ready"
    struct = _load(structure.shards[0])
    comp = _load(composition.shards[0])
    ordered = sorted(crystals, key=lambda c: c.content_hash())
    assert struct["crystal_hash"] == [c.content_hash() for c in ordered]
    assert struct["fingerprints"].shape == (3, 61) and bool(struct["ok"].all())
    magpie = ElementProperty.from_preset("magpie")  # raw features, before CDVAE's scaling
    raw = np.array(magpie.featurize(ordered[0].to_pymatgen().composition))
    assert comp["fingerprints"].shape == (3, 132)
    want = standardise_comp(raw[None])[0]
    np.testing.assert_allclose(comp["fingerprints"][0].numpy(), want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "params",
    ['{"cutoff": -1}', '{"shard_size": 0}', '{"max_neighbors": 4}', '"x"', '{"shard_size": 2.5}'],
)
def test_invalid_configs_are_invalid_input(params):
    with pytest.raises(InvalidInput):
        resolve_config("periodic", params)


def test_equal_configs_hash_equal():
    one = resolve_config("", '{"cutoff": 5.0, "canonical": true}')
    two = resolve_config("periodic", '{"canonical":true,"cutoff":5}')
    assert one.config_hash == two.config_hash and one.canonical_json == two.canonical_json
    assert resolve_config("", "{}").config_hash != one.config_hash
