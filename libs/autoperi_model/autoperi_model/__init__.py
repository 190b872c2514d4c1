"""autoperi_model: the equivariant periodic backbone, flow matching and diffusion on
lattice x torus, and physics-informed training terms.

Public surface: configs, the batch type, the backbone, the per-field processes, the generic
generative core with its flow and diffusion models, training, checkpoints and the `Generator`
facade. The property test kit lives in
`autoperi_model.testing`; the typer sub-app in `autoperi_model.cli`.
"""

from autoperi_model._backbone import TYPE_LOGITS, Backbone
from autoperi_model._batch import CrystalBatch, CrystalTable
from autoperi_model._checkpoint import Manifest, load_weights, read_manifest, save_checkpoint
from autoperi_model._config import (
    BackboneConfig,
    Config,
    DataConfig,
    DiffusionConfig,
    FlowConfig,
    PhysicsConfig,
    SampleConfig,
    TrainConfig,
)
from autoperi_model._data import load_split
from autoperi_model._diffusion import DiffusionModel, LatticeDiffusion, TorusDiffusion
from autoperi_model._fields import FieldProcess, LatticeFlow, TorusFlow
from autoperi_model._flow import FlowModel, build_model
from autoperi_model._generator import Generator, parse_composition
from autoperi_model._graph import build_graph, cap_neighbors
from autoperi_model._model import GenerativeModel
from autoperi_model._physics import min_distance_penalty
from autoperi_model._train import TrainingData, train

__all__ = [
    "TYPE_LOGITS",
    "Backbone",
    "BackboneConfig",
    "Config",
    "CrystalBatch",
    "CrystalTable",
    "DataConfig",
    "DiffusionConfig",
    "DiffusionModel",
    "FieldProcess",
    "FlowConfig",
    "FlowModel",
    "GenerativeModel",
    "Generator",
    "LatticeDiffusion",
    "LatticeFlow",
    "Manifest",
    "PhysicsConfig",
    "SampleConfig",
    "TorusDiffusion",
    "TorusFlow",
    "TrainConfig",
    "TrainingData",
    "build_graph",
    "build_model",
    "cap_neighbors",
    "load_split",
    "load_weights",
    "min_distance_penalty",
    "parse_composition",
    "read_manifest",
    "save_checkpoint",
    "train",
]
