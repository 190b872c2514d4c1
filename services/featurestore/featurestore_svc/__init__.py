"""The featurestore service: features of (dataset commit, featuriser config), built once.

`create_server(settings, deps)` builds the server; `FeatureStoreCore` is its logic without gRPC;
`featurestore_svc.main.main` runs it. Replies carry shard references, never bulk data.
"""

from featurestore_svc._config import ResolvedConfig, resolve_config
from featurestore_svc._core import ArtifactState, FeatureRequest, FeatureSetState, FeatureStoreCore
from featurestore_svc._server import SERVICE_NAME, FeatureStoreDeps, create_server
from featurestore_svc._settings import FeatureStoreSettings

__all__ = [
    "SERVICE_NAME",
    "ArtifactState",
    "FeatureRequest",
    "FeatureSetState",
    "FeatureStoreCore",
    "FeatureStoreDeps",
    "FeatureStoreSettings",
    "ResolvedConfig",
    "create_server",
    "resolve_config",
]
