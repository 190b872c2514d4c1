"""EMPNN-style invariant message passing with equivariant read-outs (SCIENCE.md section 3).

Messages depend only on atom types, time, edge lengths and node states, so they are invariant
under E(3), translations, permutations, periodic-image shifts and GL3(Z) changes of cell basis.
Read-outs:
  * coordinate field  dX_i = sum_e w(m_e) (x_j + k - x_i) / K     (N, 3), transforms like X;
  * lattice field     S_b  = mean_e psi(m_e) u_e u_e^T           (B, 3, 3), Cartesian, symmetric;
  * type logits                                                   (N, max_z + 1), invariant.
"""

from __future__ import annotations

import math

import torch
from periodic import keys
from torch import Tensor, nn

from autoperi_model._batch import CrystalBatch
from autoperi_model._config import BackboneConfig
from autoperi_model._graph import build_graph, shortest_lattice_vectors, smooth_graph

TYPE_LOGITS = "type_logits"
OUTPUTS = (keys.FRAC_COORDS, keys.LATTICE, TYPE_LOGITS)


def _mlp(dim_in: int, hidden: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.SiLU(), nn.Linear(hidden, dim_out))


def bessel_rbf(lengths: Tensor, num: int, cutoff: float) -> Tensor:
    """Bessel basis sin(n pi r / rc) / r times the DimeNet p = 5 envelope, (E, num)."""
    r = lengths.clamp_min(1e-6).unsqueeze(-1) / cutoff
    n = torch.arange(1, num + 1, dtype=lengths.dtype)
    x = r.clamp_max(1.0)
    envelope = 1 - 21 * x**5 + 35 * x**6 - 15 * x**7
    return math.sqrt(2.0) * torch.sin(n * math.pi * r) / r * envelope


def time_features(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal features of t in [0, 1], (B, dim)."""
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), dim // 2, dtype=t.dtype))
    angles = t.unsqueeze(-1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class _Interaction(nn.Module):
    """One message-passing layer; node features are projected before gathering onto edges.

    Messages are scaled by the edge weights (1 for a hard neighbour cap). With `angular` > 0,
    the node update also sees 3-body invariants of learned moments of the edge directions u_e:
    p_c = sum_e g_c(m_e) u_e and T_c = sum_e g_c(m_e) (u_e u_e^T - I/3) per channel c, through
    |p_c|^2, |T_c|_F^2 and p_c^T T_c p_c (rotation, reflection and cell-choice invariant).
    """

    def __init__(self, hidden: int, num_rbf: int, angular: int = 0) -> None:
        super().__init__()
        self.src = nn.Linear(hidden, hidden)
        self.dst = nn.Linear(hidden, hidden, bias=False)
        self.rbf = nn.Linear(num_rbf, hidden, bias=False)
        self.edge = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.angular = nn.Linear(hidden, angular) if angular else None
        self.node = _mlp(3 * hidden + 3 * angular, hidden, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(
        self, h: Tensor, rbf: Tensor, graph, weight: Tensor, batch: CrystalBatch, k: int
    ) -> Tensor:
        src, dst = graph.edge_index[0], graph.edge_index[1]
        msg = self.src(h).index_select(0, src) + self.dst(h).index_select(0, dst) + self.rbf(rbf)
        msg = self.edge(msg) * weight.unsqueeze(-1)  # (E, H)
        agg = torch.zeros_like(h).index_add_(0, src, msg) / k
        pooled = _crystal_mean(h, batch).index_select(0, batch.batch)
        parts = [h, agg, pooled]
        if self.angular is not None:
            parts.append(self._angular(self.angular(msg) / k, graph, len(h)))
        return self.norm(h + self.node(torch.cat(parts, dim=-1)))

    @staticmethod
    def _angular(g: Tensor, graph, num_nodes: int) -> Tensor:
        """(N, 3C) invariants of the first and traceless second moments of edge directions."""
        unit = graph.edge_vectors / graph.edge_lengths.clamp_min(1e-6).unsqueeze(-1)  # (E, 3)
        src = graph.edge_index[0]
        outer = unit.unsqueeze(-1) * unit.unsqueeze(-2) - torch.eye(3, dtype=unit.dtype) / 3
        c = g.shape[1]
        p = g.new_zeros(num_nodes, c, 3).index_add_(0, src, g.unsqueeze(-1) * unit.unsqueeze(1))
        t = g.new_zeros(num_nodes, c, 3, 3).index_add_(
            0, src, g.unsqueeze(-1).unsqueeze(-1) * outer.unsqueeze(1)
        )
        cubic = torch.einsum("nci,ncij,ncj->nc", p, t, p)
        return torch.cat([p.square().sum(-1), t.square().sum((-2, -1)), cubic], dim=-1)


def _crystal_mean(values: Tensor, batch: CrystalBatch) -> Tensor:
    """Per-crystal mean of per-atom values, (B, ...)."""
    total = values.new_zeros((batch.num_crystals, *values.shape[1:]))
    total = total.index_add_(0, batch.batch, values)
    return total / batch.num_atoms.to(values.dtype).view(-1, *[1] * (values.dim() - 1))


class Backbone(nn.Module):
    """Maps a (noisy) batch and per-crystal times t (B,) to the fields named in `OUTPUTS`."""

    outputs = OUTPUTS

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.config = config
        hid = config.hidden
        self.embed = nn.Embedding(config.max_z + 1, hid)
        self.time = _mlp(config.time_dim, hid, hid)
        self.time_in = nn.ModuleList(nn.Linear(hid, hid) for _ in range(config.layers))
        self.layers = nn.ModuleList(
            _Interaction(hid, config.num_rbf, config.angular_channels) for _ in range(config.layers)
        )
        self.head_src = nn.Linear(hid, hid)
        self.head_dst = nn.Linear(hid, hid, bias=False)
        self.head_rbf = nn.Linear(config.num_rbf, hid, bias=False)
        self.head_edge = nn.Sequential(nn.SiLU(), nn.Linear(hid, hid), nn.SiLU(), nn.Linear(hid, 2))
        self.head_type = _mlp(hid, hid, config.max_z + 1)
        self.lattice = _LatticeFeatures(config) if config.lattice_vectors else None

    def forward(self, batch: CrystalBatch, t: Tensor) -> dict[str, Tensor]:
        """Fields {frac_coords: (N, 3), lattice: (B, 3, 3), type_logits: (N, max_z + 1)}."""
        cfg = self.config
        if cfg.smooth_neighbors:
            graph, weight = smooth_graph(batch, cfg.cutoff, cfg.max_neighbors)
        else:
            graph = build_graph(batch, cfg.cutoff, cfg.max_neighbors)
            weight = graph.edge_lengths.new_ones(graph.edge_lengths.shape)
        index = graph.edge_index
        rbf = bessel_rbf(graph.edge_lengths, cfg.num_rbf, cfg.cutoff)  # (E, R)
        cond = self.time(time_features(t, cfg.time_dim))  # (B, H)
        if self.lattice is not None:
            cond = cond + self.lattice.embed(batch)
        cond = cond.index_select(0, batch.batch)  # (N, H)
        h = self.embed(batch.atomic_numbers)
        for time_in, layer in zip(self.time_in, self.layers, strict=True):
            h = layer(h + time_in(cond), rbf, graph, weight, batch, cfg.max_neighbors)
        src, dst = index[0], index[1]
        edge = self.head_src(h).index_select(0, src) + self.head_dst(h).index_select(0, dst)
        heads = self.head_edge(edge + self.head_rbf(rbf)) * weight.unsqueeze(-1)  # (E, 2)
        return {
            keys.FRAC_COORDS: self._coord_field(heads[:, 0], graph, batch),
            keys.LATTICE: self._lattice_field(heads[:, 1], weight, graph, batch, h),
            TYPE_LOGITS: self.head_type(h),
        }

    def _coord_field(self, w: Tensor, graph, batch: CrystalBatch) -> Tensor:
        src, dst = graph.edge_index[0], graph.edge_index[1]
        frac = batch.frac_coords
        delta = frac.index_select(0, dst) - frac.index_select(0, src) + graph.cell_offsets.to(frac)
        field = torch.zeros_like(frac).index_add_(0, src, w.unsqueeze(-1) * delta)
        return field / self.config.max_neighbors  # (N, 3)

    def _lattice_field(
        self, psi: Tensor, weight: Tensor, graph, batch: CrystalBatch, h: Tensor
    ) -> Tensor:
        """Weighted mean over edges of psi_e u_e u_e^T (psi already carries the edge weight)."""
        unit = graph.edge_vectors / graph.edge_lengths.clamp_min(1e-6).unsqueeze(-1)  # (E, 3)
        outer = psi.view(-1, 1, 1) * unit.unsqueeze(-1) * unit.unsqueeze(-2)  # (E, 3, 3)
        crystal = batch.batch.index_select(0, graph.edge_index[0])
        total = outer.new_zeros(batch.num_crystals, 3, 3).index_add_(0, crystal, outer)
        count = weight.new_zeros(batch.num_crystals).index_add_(0, crystal, weight)
        field = total / count.clamp_min(1e-6).view(-1, 1, 1)  # (B, 3, 3)
        if self.lattice is not None:
            field = field + self.lattice.field(_crystal_mean(h, batch), batch)
        return field


class _LatticeFeatures(nn.Module):
    """Invariant crystal features from the shortest lattice vectors, and a lattice field on them.

    Lengths are divided by V^(1/3) (shape) and the scale V^(1/3) enters separately, so both
    inputs are invariant under rotations, reflections and changes of cell basis. The field is
    `mean_v phi(h_b, |v|) v^ v^T` over those vectors (Cartesian, symmetric).
    """

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.count, self.num_rbf = config.lattice_vectors, config.num_rbf
        self.vector = _mlp(config.num_rbf + 1, config.hidden, config.hidden)
        self.out = _mlp(config.hidden, config.hidden, config.hidden)
        self.psi = _mlp(2 * config.hidden, config.hidden, 1)
        for last in (self.out[-1], self.psi[-1]):  # start as a no-op (warm starts stay exact)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def _vectors(self, batch: CrystalBatch) -> tuple[Tensor, Tensor, Tensor]:
        graph = shortest_lattice_vectors(batch.lattice, self.count)
        scale = torch.linalg.det(batch.lattice).abs() ** (1 / 3)  # (B,)
        crystal = graph.edge_index[0]
        rel = graph.edge_lengths / scale.index_select(0, crystal)
        centers = torch.linspace(0.5, 1.8, self.num_rbf, dtype=rel.dtype)
        rbf = torch.exp(-(((rel.unsqueeze(-1) - centers) / 0.1) ** 2))
        feats = torch.cat([rbf, torch.log(scale).index_select(0, crystal).unsqueeze(-1)], -1)
        return crystal, feats, graph.edge_vectors / graph.edge_lengths.unsqueeze(-1)

    def embed(self, batch: CrystalBatch) -> Tensor:
        """Crystal embedding (B, H): mean over the shortest lattice vectors."""
        crystal, feats, _ = self._vectors(batch)
        msg = self.vector(feats)
        total = msg.new_zeros(batch.num_crystals, msg.shape[-1]).index_add_(0, crystal, msg)
        count = torch.bincount(crystal, minlength=batch.num_crystals).clamp_min(1)
        return self.out(total / count.to(msg.dtype).unsqueeze(-1))

    def field(self, pooled: Tensor, batch: CrystalBatch) -> Tensor:
        """Symmetric Cartesian field (B, 3, 3) from pooled atom states (B, H)."""
        crystal, feats, unit = self._vectors(batch)
        psi = self.psi(torch.cat([pooled.index_select(0, crystal), self.vector(feats)], -1))
        outer = psi.view(-1, 1, 1) * unit.unsqueeze(-1) * unit.unsqueeze(-2)  # (V, 3, 3)
        total = outer.new_zeros(batch.num_crystals, 3, 3).index_add_(0, crystal, outer)
        count = torch.bincount(crystal, minlength=batch.num_crystals).clamp_min(1)
        return total / count.to(total.dtype).view(-1, 1, 1)
