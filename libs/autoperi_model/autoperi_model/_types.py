"""Atom types by masked discrete flow matching (Campbell et al. 2024; Gat et al. 2024), for de
novo generation (SCIENCE.md 4.3).

The state is the atomic-number field with a mask token `MASK` = 0 (no element has Z = 0, and
the backbone's embedding has a row for it). Path: each atom is revealed independently, atom i
shows its type at time t with probability kappa(t) = t and is masked otherwise; the base
(t = 0) is all masks. The network predicts the clean type's logits (the backbone's
`type_logits`, invariant); the loss is the cross-entropy on the masked atoms. An Euler step of
length dt reveals each masked atom with probability dt / (1 - t), drawing its type from the
predicted distribution, so the last step (t = 1 - dt) reveals every atom that is left.
"""

from __future__ import annotations

import torch
from periodic import keys
from torch import Tensor
from torch.nn import functional

from autoperi_model._backbone import TYPE_LOGITS
from autoperi_model._batch import CrystalBatch
from autoperi_model._fields import crystal_mean

MASK = 0


class MaskedTypeFlow:
    """Masked discrete flow on atomic numbers; predictions are logits (N, max_z + 1)."""

    key = keys.ATOMIC_NUMBERS
    output = TYPE_LOGITS

    def sample_base(self, batch: CrystalBatch, generator: torch.Generator) -> Tensor:
        return torch.full_like(batch.atomic_numbers, MASK)  # (N,)

    def corrupt(
        self, x1: Tensor, t: Tensor, batch: CrystalBatch, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        reveal = torch.rand(x1.shape, generator=generator) < t.index_select(0, batch.batch)
        return torch.where(reveal, x1, torch.full_like(x1, MASK)), x1

    def project(self, raw: Tensor, batch: CrystalBatch) -> Tensor:
        """Logits with the mask token excluded (it is never a prediction)."""
        return raw.index_fill(-1, torch.tensor([MASK]), float("-inf"))

    def loss(self, pred: Tensor, target: Tensor, t: Tensor, batch: CrystalBatch) -> Tensor:
        masked = batch.atomic_numbers == MASK
        ce = functional.cross_entropy(pred, target, reduction="none")  # (N,)
        return crystal_mean(torch.where(masked, ce, torch.zeros_like(ce)), batch)

    def clean_estimate(self, x: Tensor, pred: Tensor, t: Tensor, batch: CrystalBatch) -> Tensor:
        return torch.where(x == MASK, pred.argmax(-1), x)

    def step(
        self,
        x: Tensor,
        logits: Tensor,
        t: Tensor,
        dt: float,
        batch: CrystalBatch,
        generator: torch.Generator,
    ) -> Tensor:
        """Reveal masked atoms with probability dt / (1 - t), types drawn from softmax(logits)."""
        last = t + dt >= 1 - 1e-6  # reveal the rest exactly, whatever the rounding of t
        rate = torch.where(last, 1.0, dt / (1 - t).clamp_min(dt)).index_select(0, batch.batch)
        reveal = (x == MASK) & (torch.rand(x.shape, generator=generator) < rate)
        if not bool(reveal.any()):
            return x
        drawn = torch.multinomial(logits[reveal].softmax(-1), 1, generator=generator).squeeze(-1)
        return x.masked_scatter(reveal, drawn)
