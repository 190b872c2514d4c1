"""Typed configuration of the model, the generative process and training (loadable from YAML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackboneConfig(_Strict):
    """Invariant message passing over the periodic kNN graph (SCIENCE.md section 3)."""

    hidden: int = Field(128, gt=0)
    layers: int = Field(4, gt=0)
    num_rbf: int = Field(32, gt=0)
    time_dim: int = Field(32, gt=0)
    cutoff: float = Field(7.0, gt=0, description="Graph cutoff and envelope radius (Angstrom).")
    max_neighbors: int = Field(24, gt=0, description="Neighbour cap per atom (nearest first).")
    max_z: int = Field(100, gt=0)
    lattice_vectors: int = Field(
        0, ge=0, description="Shortest lattice vectors fed as crystal features (0: none)."
    )
    smooth_neighbors: bool = Field(
        False,
        description="Weight edges by a smooth envelope that vanishes between the K-th "
        "neighbour's distance and 1.25 times it (K = max_neighbors), so fields are continuous "
        "in the positions; False: a hard cap of whole shells.",
    )
    angular_channels: int = Field(
        0,
        ge=0,
        description="Channels of angular (3-body) invariants per layer, from learned first and "
        "second moments of each atom's edge directions (0: none).",
    )


class FlowConfig(_Strict):
    """Flow matching on torus x lattice (SCIENCE.md section 4.1)."""

    lattice_weight: float = Field(1.0, ge=0)
    lattice_base_std: float = Field(0.1, ge=0, description="Std of the symmetric base matrix B.")
    type_weight: float = Field(1.0, ge=0, description="Weight of the atom-type loss (task dng).")
    symmetric: bool = Field(
        False,
        description="Task csp: generate inside each crystal's space group (Wyckoff free "
        "parameters, invariant lattice); sampling then needs templates.",
    )
    deform_std: float = Field(
        0.1, gt=0, description="Task lattice: std of the symmetric log-deformation A."
    )
    cubic_share: float = Field(
        0.5, ge=0, le=1, description="Task lattice: share of bases that are cubic cells."
    )


class DiffusionConfig(_Strict):
    """GemsDiff-style diffusion (SCIENCE.md 4.2): wrapped normal on the torus (variance
    exploding, sigma geometric from sigma_max at t = 0 to sigma_min at t = 1) and a variance-
    preserving cosine schedule in the symmetric Lie algebra of the lattice."""

    sigma_min: float = Field(0.005, gt=0, description="Torus noise at t = 1 (fractional).")
    sigma_max: float = Field(0.5, gt=0, description="Torus noise at t = 0 (fractional).")
    lattice_sigma: float = Field(0.3, gt=0, description="Std of the lattice log-stretch noise.")
    loss_sigma_floor: float = Field(
        0.05, gt=0, description="Torus loss is divided by max(sigma_t, floor)^2."
    )


class PhysicsConfig(_Strict):
    """Physics-informed training terms (SCIENCE.md 4.4); weight 0 switches a term off."""

    min_distance_weight: float = Field(0.0, ge=0)
    min_distance_scale: float = Field(
        0.6, gt=0, description="d_min(Zi, Zj) = max(0.5 A, scale * (r_cov,i + r_cov,j))."
    )


class DataConfig(_Strict):
    """Which dataset to train on; the directory comes from AUTOPERI_DATA_DIR."""

    dataset: str = "perov_5"
    train_split: str = "train"
    val_split: str = "val"
    held_out_rows: int = Field(
        0,
        ge=0,
        description="The first rows of the val split (file order) held out for model "
        "selection; the rest of the split joins the training data (0: validate on all of it).",
    )


class TrainConfig(_Strict):
    """Optimisation, EMA, checkpointing and the run's resource limits."""

    batch_size: int = Field(256, gt=0)
    lr: float = Field(1e-3, gt=0)
    min_lr: float = Field(1e-5, ge=0)
    warmup_steps: int = Field(200, ge=0)
    max_steps: int = Field(10_000, gt=0)
    max_minutes: float | None = Field(None, gt=0, description="Stop (and checkpoint) after this.")
    ema_decay: float = Field(0.999, ge=0, lt=1)
    grad_clip: float = Field(1.0, gt=0)
    checkpoint_every_steps: int = Field(500, gt=0)
    log_every_steps: int = Field(50, gt=0)
    seed: int = 0
    init_from: str | None = Field(
        None, description="Checkpoint whose weights initialise the model (missing keys stay new)."
    )
    num_threads: int = Field(1, gt=0)
    progress: bool = True


class SampleConfig(_Strict):
    """Default sampler settings stored with a checkpoint."""

    sampler: Literal["euler", "heun", "ddpm"] = "heun"
    steps: int = Field(50, gt=0)
    anneal: dict[str, float] = Field(
        default_factory=dict, description="Field -> s: velocity scaled by (1 + s t)."
    )


class Config(_Strict):
    """The whole run: data, backbone, generative process, physics terms, training and default
    sampling. `task` csp generates positions and lattice for given atoms; dng also generates
    the atom types (flow only); lattice restores the lattice of given atoms and positions
    (EMPNN's denoising and reconstruction, flow only). `process` picks flow matching
    (samplers euler/heun) or diffusion (ddpm)."""

    task: Literal["csp", "dng", "lattice"] = "csp"

    data: DataConfig = DataConfig()
    backbone: BackboneConfig = BackboneConfig()
    process: Literal["flow", "diffusion"] = "flow"
    flow: FlowConfig = FlowConfig()
    diffusion: DiffusionConfig = DiffusionConfig()
    physics: PhysicsConfig = PhysicsConfig()
    train: TrainConfig = TrainConfig()
    sample: SampleConfig = SampleConfig()

    @classmethod
    def from_yaml(cls, path: str | Path) -> Config:
        """Read a YAML file; unknown keys are errors."""
        return cls.model_validate(yaml.safe_load(Path(path).read_text()) or {})

    def to_yaml(self) -> str:
        """YAML text that `from_yaml` reads back to an equal config."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def updated(self, **sections: dict[str, Any]) -> Config:
        """A copy with some fields replaced, e.g. `updated(train={"max_steps": 5})`."""
        data = self.model_dump()
        for name, fields in sections.items():
            data[name].update(fields)
        return Config.model_validate(data)
