"""The featurestore service: features of (dataset commit, featuriser config), built once.

`create_server(settings, deps)` builds the server; `FeatureStoreCore` is its logic without gRPC;
`featurestore_svc.main.main` runs it. Replies carry shard references, never bulk data.
"""

from svc_kit import lazy_exports

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

__getattr__ = lazy_exports(
    __name__,
    {
        "ResolvedConfig": "._config",
        "resolve_config": "._config",
        "ArtifactState": "._core",
        "FeatureRequest": "._core",
        "FeatureSetState": "._core",
        "FeatureStoreCore": "._core",
        "SERVICE_NAME": "._server",
        "FeatureStoreDeps": "._server",
        "create_server": "._server",
        "FeatureStoreSettings": "._settings",
    },
)
