"""autoperi_model: the equivariant periodic backbone and flow matching on lattice x torus.

Public surface: configs, the batch type, the backbone, the per-field processes and the generic
flow model, training, checkpoints and the `Generator` facade. The property test kit lives in
`autoperi_model.testing`; the typer sub-app in `autoperi_model.cli`.
"""

from autoperi_model._backbone import TYPE_LOGITS, Backbone
from autoperi_model._batch import CrystalBatch, CrystalTable
from autoperi_model._checkpoint import Manifest, load_weights, read_manifest, save_checkpoint
from autoperi_model._config import (
    BackboneConfig,
    Config,
    DataConfig,
    FlowConfig,
    SampleConfig,
    TrainConfig,
)
from autoperi_model._data import load_split
from autoperi_model._fields import FieldProcess, LatticeFlow, TorusFlow
from autoperi_model._flow import FlowModel, build_model
from autoperi_model._generator import Generator, parse_composition
from autoperi_model._graph import build_graph, cap_neighbors
from autoperi_model._train import TrainingData, train

__all__ = [
    "TYPE_LOGITS",
    "Backbone",
    "BackboneConfig",
    "Config",
    "CrystalBatch",
    "CrystalTable",
    "DataConfig",
    "FieldProcess",
    "FlowConfig",
    "FlowModel",
    "Generator",
    "LatticeFlow",
    "Manifest",
    "SampleConfig",
    "TorusFlow",
    "TrainConfig",
    "TrainingData",
    "build_graph",
    "build_model",
    "cap_neighbors",
    "load_split",
    "load_weights",
    "parse_composition",
    "read_manifest",
    "save_checkpoint",
    "train",
]
