"""autoperi_model: the equivariant periodic backbone, flow matching and diffusion on
lattice x torus, and physics-informed training terms.

Public surface: configs, the batch type, the backbone, the per-field processes, the generic
generative core with its flow and diffusion models, training (on tables of featurised shards),
checkpoints and the `Generator` facade, the only way to sample, with its registry of checkpoint
kinds (`register_kind`: a new kind of model registers its loader there). The property test kit
lives in `autoperi_model.testing`; the typer sub-app in `autoperi_model.cli`.
"""

from autoperi_model._backbone import TYPE_LOGITS, Backbone
from autoperi_model._batch import CrystalBatch, CrystalTable
from autoperi_model._bench import bench_sample, bench_train
from autoperi_model._bench_conditioning import (
    ELEMENT_CONDITIONS,
    ION_EXCHANGE_CONDITIONS,
    Condition,
    ConditioningPlan,
    bench_conditioning,
)
from autoperi_model._bench_conditioning_report import write_conditioning
from autoperi_model._checkpoint import (
    Manifest,
    UnsafeCheckpoint,
    load_weights,
    read_manifest,
    save_checkpoint,
)
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
from autoperi_model._diffusion import DiffusionModel, LatticeDiffusion, TorusDiffusion
from autoperi_model._fields import FieldProcess, LatticeFlow, TorusFlow
from autoperi_model._flow import FlowModel, build_model
from autoperi_model._generator import Generator, ModelGenerator
from autoperi_model._graph import build_graph, cap_neighbors
from autoperi_model._ion_exchange import IonExchangeGenerator, save_ion_exchange
from autoperi_model._kinds import (
    TASKS,
    CheckpointMismatch,
    Kind,
    check_checkpoint,
    checkpoint_kind,
    load_generator,
    register_kind,
    registered_kinds,
)
from autoperi_model._model import GenerativeModel
from autoperi_model._physics import min_distance_penalty
from autoperi_model._sampling import (
    SampleSpec,
    atom_count_range,
    atom_count_weights,
    element_numbers,
    parse_composition,
    sample_seed,
)
from autoperi_model._shard_data import table_from_shards
from autoperi_model._substitution import SubstitutionOptions
from autoperi_model._symmetric import SymmetricLatticeFlow, SymmetricTorusFlow
from autoperi_model._symmetry_data import SymmetricCrystals, analyze, analyze_many
from autoperi_model._template_build import TemplatesConfig, build_templates, library_from
from autoperi_model._template_generator import TemplateGenerator, save_templates
from autoperi_model._templates import TemplateLibrary
from autoperi_model._train import TrainingData, WarmStartError, train

__all__ = [
    "ELEMENT_CONDITIONS",
    "ION_EXCHANGE_CONDITIONS",
    "TASKS",
    "TYPE_LOGITS",
    "Backbone",
    "BackboneConfig",
    "CheckpointMismatch",
    "Condition",
    "ConditioningPlan",
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
    "IonExchangeGenerator",
    "Kind",
    "LatticeDiffusion",
    "LatticeFlow",
    "Manifest",
    "ModelGenerator",
    "PhysicsConfig",
    "SampleConfig",
    "SampleSpec",
    "SubstitutionOptions",
    "SymmetricCrystals",
    "SymmetricLatticeFlow",
    "SymmetricTorusFlow",
    "TemplateGenerator",
    "TemplateLibrary",
    "TemplatesConfig",
    "TorusDiffusion",
    "TorusFlow",
    "TrainConfig",
    "TrainingData",
    "UnsafeCheckpoint",
    "WarmStartError",
    "analyze",
    "analyze_many",
    "atom_count_range",
    "atom_count_weights",
    "bench_conditioning",
    "bench_sample",
    "bench_train",
    "build_graph",
    "build_model",
    "build_templates",
    "cap_neighbors",
    "check_checkpoint",
    "checkpoint_kind",
    "element_numbers",
    "library_from",
    "load_generator",
    "load_weights",
    "min_distance_penalty",
    "parse_composition",
    "read_manifest",
    "register_kind",
    "registered_kinds",
    "sample_seed",
    "save_checkpoint",
    "save_ion_exchange",
    "save_templates",
    "table_from_shards",
    "train",
    "write_conditioning",
]
