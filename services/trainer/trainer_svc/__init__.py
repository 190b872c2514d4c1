"""trainer_svc: the training service (Ray Train TorchTrainer runs behind TrainingService).

`create_server(settings, deps)` builds the gRPC server; `train_loop_per_worker` is the per-worker
function; `client` holds helpers for callers (start, follow, fetch checkpoint files).
"""

from svc_kit import lazy_exports

__all__ = [
    "SERVICE_NAME",
    "FeatureStoreClient",
    "RunPlan",
    "TrainerCore",
    "TrainerDeps",
    "TrainerSettings",
    "create_server",
    "fetch_checkpoint",
    "is_sha256",
    "plan_run",
    "publish_checkpoint",
    "read_manifest",
    "read_shards",
    "shards_version",
    "train_loop_per_worker",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "TrainerCore": "._core",
        "FeatureStoreClient": "._featurestore",
        "fetch_checkpoint": "._objects",
        "is_sha256": "._objects",
        "read_shards": "._objects",
        "shards_version": "._objects",
        "publish_checkpoint": "._objects",
        "read_manifest": "._objects",
        "SERVICE_NAME": "._server",
        "TrainerDeps": "._server",
        "create_server": "._server",
        "TrainerSettings": "._settings",
        "RunPlan": "._spec",
        "plan_run": "._spec",
        "train_loop_per_worker": "._worker",
    },
)
