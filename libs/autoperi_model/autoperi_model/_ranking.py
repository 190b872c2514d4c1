"""Ranking template candidates: a small network trained listwise on matched / unmatched labels.

Each query has a list of candidates with features (`_templates.FEATURES`); the network gives each
a logit, and training maximises the log of the softmax mass on the query's matched candidates
(queries without any are skipped), which is what picking one candidate (k = 1) rewards.
Features are standardised with the training set's mean and spread, kept as buffers so the saved
state dict alone restores the ranker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn


class TemplateRanker(nn.Module):
    """Logits (M,) of candidates from their features (M, F): one hidden layer (SiLU)."""

    def __init__(self, num_features: int, hidden: int = 32) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_features, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(num_features, dtype=torch.float64))
        self.net = nn.Sequential(nn.Linear(num_features, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, features: Tensor) -> Tensor:
        x = ((features.double() - self.mean) / self.scale).float()
        return self.net(x).squeeze(-1)

    @torch.no_grad()
    def score(self, features: np.ndarray) -> np.ndarray:
        """Logits (M,) of a (M, F) feature array."""
        return self.forward(torch.as_tensor(features)).double().numpy()


def listwise_loss(logits: Tensor, labels: Tensor, groups: Tensor, num_groups: int) -> Tensor:
    """Mean over groups with a positive of -log(sum of softmax over the group's positives)."""
    top = torch.full((num_groups,), -torch.inf).scatter_reduce(0, groups, logits, "amax")
    weight = torch.exp(logits - top.index_select(0, groups))
    total = torch.zeros(num_groups).index_add(0, groups, weight)
    positive = torch.zeros(num_groups).index_add(0, groups, weight * labels)
    has = torch.zeros(num_groups).index_add(0, groups, labels) > 0
    return -(torch.log(positive[has] + 1e-12) - torch.log(total[has])).mean()


def fit_ranker(
    features: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    hidden: int = 32,
    epochs: int = 40,
    seed: int = 0,
    queries_per_step: int = 256,
) -> TemplateRanker:
    """Train a ranker on queries: features[q] (M_q, F), labels[q] (M_q,) in {0, 1}."""
    torch.manual_seed(seed)
    x = torch.as_tensor(np.concatenate(features), dtype=torch.float64)
    y = torch.as_tensor(np.concatenate(labels), dtype=torch.float32)
    sizes = torch.tensor([len(f) for f in features])
    bounds = torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long), sizes]), 0)
    ranker = TemplateRanker(x.shape[1], hidden)
    ranker.mean.copy_(x.mean(0))
    ranker.scale.copy_(x.std(0) + 1e-6)
    opt = torch.optim.AdamW(ranker.net.parameters(), lr=3e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(sizes), generator=gen)
        for start in range(0, len(order), queries_per_step):
            chosen = order[start : start + queries_per_step]
            rows = torch.cat([torch.arange(bounds[q], bounds[q + 1]) for q in chosen.tolist()])
            groups = torch.repeat_interleave(torch.arange(len(chosen)), sizes[chosen])
            loss = listwise_loss(ranker(x[rows]), y[rows], groups, len(chosen))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return ranker.eval()
