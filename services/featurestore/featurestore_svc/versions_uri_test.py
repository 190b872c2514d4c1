"""versions_uri: datasets read from one store (e.g. lakeFS), features written to another."""

import grpc
from autoperi.common.v1 import common_pb2
from autoperi.featurestore.v1 import featurestore_pb2 as pb
from autoperi.featurestore.v1 import featurestore_pb2_grpc
from ingest_svc.testing import serving
from storage import LocalObjectStore, LocalVersionStore

from featurestore_svc import FeatureStoreDeps, FeatureStoreSettings, create_server
from featurestore_svc.conftest import store_dataset


def test_features_of_a_dataset_kept_in_a_separate_version_store(tmp_path, mp20_subset):
    datasets, features = tmp_path / "datasets", tmp_path / "features"
    commit = store_dataset(LocalVersionStore(LocalObjectStore(datasets)), "mp20-x", mp20_subset)
    settings = FeatureStoreSettings(
        host="127.0.0.1", port=0, log_json=False, storage_uri=str(features)
    )
    assert not FeatureStoreDeps.from_settings(settings).versions.repository_exists("mp20-x")
    settings = settings.model_copy(update={"versions_uri": str(datasets)})
    deps = FeatureStoreDeps.from_settings(settings)
    request = pb.BuildFeaturesRequest(
        dataset=common_pb2.DatasetRef(dataset="mp20-x"),
        featurizer=pb.FeaturizerConfig(name="periodic", params_json='{"shard_size": 32}'),
    )
    with (
        serving(lambda: create_server(settings, deps)) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)
        feature_set = list(stub.BuildFeatures(request, timeout=300))[-1].feature_set
    assert feature_set.dataset_commit == commit
    shard_uris = [s.object.uri for a in feature_set.artifacts for s in a.shards]
    assert shard_uris and all(uri.startswith(features.as_uri()) for uri in shard_uris)
