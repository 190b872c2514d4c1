"""Dataset splits -> cached tensor shards (canonical arrays, statistics, clean-structure graphs).

Shards are plain dicts of tensors named by ``periodic.keys``, saved with ``torch.save`` and read
with ``load_shard`` (``torch.load(weights_only=True)``).
"""

from featurize._cache import FeaturizedSplit, featurize_split, open_featurized
from featurize._config import FORMAT_VERSION, FeaturizerConfig, dataset_hash
from featurize._shards import build_shard, load_shard, save_shard
from featurize._stats import DatasetStats, compute_stats

__all__ = [
    "FORMAT_VERSION",
    "DatasetStats",
    "FeaturizedSplit",
    "FeaturizerConfig",
    "build_shard",
    "compute_stats",
    "dataset_hash",
    "featurize_split",
    "load_shard",
    "open_featurized",
    "save_shard",
]
