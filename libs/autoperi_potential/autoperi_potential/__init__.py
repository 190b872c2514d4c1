"""autoperi_potential: the pretrained CHGNet potential, loaded one way for every caller.

The scorer service's workers and the evaluator's pool both load CHGNet with `load_chgnet` and
bound what they score with `scorable`. Imports numpy (chgnet and torch when loading).
"""

from autoperi_potential._chgnet import (
    FEATURE_DIM,
    MAX_ATOMS,
    MIN_VOLUME_PER_ATOM,
    MODEL_NAME,
    chgnet_version,
    load_chgnet,
    loaded_model,
    scorable,
)

__all__ = [
    "FEATURE_DIM",
    "MAX_ATOMS",
    "MIN_VOLUME_PER_ATOM",
    "MODEL_NAME",
    "chgnet_version",
    "load_chgnet",
    "loaded_model",
    "scorable",
]
