"""trainer_svc: the training service (Ray Train TorchTrainer runs behind TrainingService).

`create_server(settings, deps)` builds the gRPC server; `train_loop_per_worker` is the per-worker
function; `client` holds helpers for callers (start, follow, fetch checkpoint files).
"""

from trainer_svc._core import TrainerCore
from trainer_svc._featurestore import FeatureStoreClient
from trainer_svc._objects import fetch_checkpoint, publish_checkpoint, read_manifest
from trainer_svc._server import SERVICE_NAME, TrainerDeps, create_server
from trainer_svc._settings import TrainerSettings
from trainer_svc._spec import RunPlan, plan_run
from trainer_svc._worker import train_loop_per_worker

__all__ = [
    "SERVICE_NAME",
    "FeatureStoreClient",
    "RunPlan",
    "TrainerCore",
    "TrainerDeps",
    "TrainerSettings",
    "create_server",
    "fetch_checkpoint",
    "plan_run",
    "publish_checkpoint",
    "read_manifest",
    "train_loop_per_worker",
]
