"""CHGNet's message-passing layers with their first linear maps applied before the gathers.

Each CHGNet convolution builds, for every edge (directed bond or angle), the concatenation of
gathered atom, bond and angle features and feeds it to a gated MLP whose first layer is linear:
W [x_1; ...; x_k] + b = sum_p W_p x_p + b. The atom and bond tables are 5-50x shorter than the
edge lists, so projecting each table once and gathering the projections moves most of the
first layer's multiply-adds from edge rows to table rows (the gated MLP's core and gate maps
are stacked into one projection). The sums are the same up to float rounding (~1e-6 eV/atom,
checked by factorised_test against CHGNet's own `predict_graph`). For inference:
`factorised(model)` is a shallow copy of the CHGNet module (embeddings, bases and readout
shared) whose conv layers hold the split first-layer weights as buffers, taken when it is
called (build it again after changing the model's weights).
"""

import copy
from typing import NamedTuple

import torch
from torch import Tensor, nn


def factorised(model):
    """A CHGNet module (same weights) whose conv layers project before they gather.

    Raises TypeError when a layer is not the shape this module knows (CHGNet 0.3.0's gated
    MLPs: one or two linear layers, LayerNorm or no norm, no active dropout)."""
    from chgnet.model.layers import AngleUpdate, AtomConv, BondConv

    wrappers = {AtomConv: _AtomConv, BondConv: _BondConv, AngleUpdate: _AngleUpdate}
    widths = _Widths(
        atom=_out_width(model.atom_conv_layers[0].twoBody_atom),
        bond=_out_width(model.bond_conv_layers[0].twoBody_bond),
        angle=_out_width(model.angle_layers[0].twoBody_bond),
    )
    bonds = _BondsOfAngles()
    fast = copy.copy(model)  # nn.Module state lives in dicts: replace them, share the tensors
    fast._modules = dict(model._modules)
    for name in ("atom_conv_layers", "bond_conv_layers", "angle_layers"):
        layers = model._modules[name]
        wrapped = [None if m is None else wrappers[type(m)](m, widths, bonds) for m in layers]
        fast._modules[name] = nn.ModuleList(wrapped)
    return fast


class _Widths(NamedTuple):
    """Feature widths of CHGNet's atoms, bonds and angles."""

    atom: int
    bond: int
    angle: int

    def atom_edge(self) -> list[int]:
        """AtomConv's input: [center atom; bond; neighbour atom]."""
        return [self.atom, self.bond, self.atom]

    def angle_edge(self) -> list[int]:
        """BondConv's and AngleUpdate's input: [bond i; bond j; angle; center atom]."""
        return [self.bond, self.bond, self.angle, self.atom]


def _out_width(gated: nn.Module) -> int:
    return _linears(gated.mlp_core)[-1].out_features


class _GatedProjection(nn.Module):
    """A CHGNet `GatedMLP` applied to a concatenation of `widths`-wide parts, each part given
    as a table and the row index of every edge into it (or None for a per-edge part)."""

    def __init__(self, gated: nn.Module, widths: list[int]) -> None:
        super().__init__()
        core, gate = _linears(gated.mlp_core), _linears(gated.mlp_gate)
        with torch.no_grad():
            first = torch.cat([core[0].weight, gate[0].weight], 0)  # (2h, sum(widths))
            if first.shape[1] != sum(widths):
                raise TypeError(f"gated MLP takes {first.shape[1]} inputs, not {sum(widths)}")
            for p, w in enumerate(torch.split(first, widths, dim=1)):
                self.register_buffer(f"part_weight_{p}", w.t().contiguous())  # (w_p, 2h)
            self.register_buffer("bias", torch.cat([core[0].bias, gate[0].bias]))
        self.parts = len(widths)
        self.hidden = first.shape[0] // 2
        self.second = (core[1], gate[1]) if len(core) == 2 else None
        self.hidden_act = _activation(gated.mlp_core) if self.second else None
        self.gated = gated

    def forward(self, parts: list[tuple[Tensor, Tensor | None]]) -> Tensor:
        """(n_edges, out) from [(table (n_p, w_p), index (n_edges,) or None)]."""
        pre = None
        if len(parts) != self.parts:
            raise ValueError(f"{len(parts)} parts given, {self.parts} expected")
        for p, (table, index) in enumerate(parts):
            weight = getattr(self, f"part_weight_{p}")
            term = table @ weight
            term = term if index is None else term.index_select(0, index)
            pre = term + self.bias if pre is None else pre.add_(term)
        core, gate = pre[:, : self.hidden], pre[:, self.hidden :]
        if self.second is not None:
            core = self.second[0](self.hidden_act(core))
            gate = self.second[1](self.hidden_act(gate))
        g = self.gated
        if g.norm is not None:
            core, gate = g.bn1(core), g.bn2(gate)
        return g.activation(core) * g.sigmoid(gate)


def _linears(mlp: nn.Module) -> list[nn.Linear]:
    """The linear layers of a CHGNet MLP: [first] or [first, second] with one activation."""
    linears = [m for m in mlp.layers if isinstance(m, nn.Linear)]
    dropout = [m for m in mlp.layers if isinstance(m, nn.Dropout) and m.p > 0]
    if len(linears) not in (1, 2) or dropout or any(m.bias is None for m in linears):
        raise TypeError(f"unsupported CHGNet gated MLP: {mlp}")
    return linears


def _activation(mlp: nn.Module) -> nn.Module:
    names = [m for m in mlp.layers if not isinstance(m, nn.Linear | nn.Dropout)]
    if len(names) != 1:
        raise TypeError(f"unsupported CHGNet gated MLP: {mlp}")
    return names[0]


def _finish(layer: nn.Module, update: Tensor, old: Tensor, norm: nn.Module | None) -> Tensor:
    """CHGNet's tail of a conv layer: output map, residual, norm."""
    if getattr(layer, "use_mlp_out", False):
        update = layer.mlp_out(update)
    if layer.resnet:
        update = update + old
    return update if norm is None else norm(update)


class _BondsOfAngles:
    """The bonds an angle list refers to, with the angles' indices into them, found once per
    batch and shared by the layers of one model (CHGNet's bond graph, 3 A, uses ~15 % of the
    6 A atom graph's bonds on mp_20, so only those are projected). Not thread-safe: one
    forward at a time, as in the scorer's worker."""

    def __init__(self) -> None:
        self._graph: Tensor | None = None
        self._rows: tuple[Tensor, Tensor, Tensor] | None = None

    def __call__(self, bond_graph: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(used bond indices (m,), index of bond i (n_angles,), of bond j, into them)."""
        if self._graph is not bond_graph:  # the same tensor object within one forward
            used, inverse = torch.unique(bond_graph[:, 1:3], return_inverse=True)
            self._graph, self._rows = bond_graph, (used, inverse[:, 0], inverse[:, 1])
        return self._rows

    def parts(self, atom_feas, bond_feas, angle_feas, bond_graph):
        """The parts of CHGNet's angle-edge input, in its concatenation order."""
        used, bond_i, bond_j = self(bond_graph)
        bonds = bond_feas.index_select(0, used)
        return [(bonds, bond_i), (bonds, bond_j), (angle_feas, None), (atom_feas, bond_graph[:, 0])]


class _AtomConv(nn.Module):
    """`chgnet.model.layers.AtomConv` (input [center atom; bond; neighbour atom])."""

    def __init__(self, layer: nn.Module, widths: _Widths, bonds: _BondsOfAngles) -> None:
        super().__init__()
        self.layer = layer
        self.mlp = _GatedProjection(layer.twoBody_atom, widths.atom_edge())

    def forward(self, atom_feas, bond_feas, bond_weights, atom_graph, directed2undirected):
        from chgnet.model.functions import aggregate

        center, nbr = atom_graph[:, 0], atom_graph[:, 1]
        parts = [(atom_feas, center), (bond_feas, directed2undirected), (atom_feas, nbr)]
        messages = self.mlp(parts) * bond_weights.index_select(0, directed2undirected)
        new = aggregate(messages, center, average=False, num_owner=len(atom_feas))
        return _finish(self.layer, new, atom_feas, self.layer.atom_norm)


class _AngleEdges(nn.Module):
    """Base of the layers whose edges are angles (input [bond i; bond j; angle; center atom])."""

    def __init__(self, layer: nn.Module, widths: _Widths, bonds: _BondsOfAngles) -> None:
        super().__init__()
        self.layer, self.bonds = layer, bonds
        self.mlp = _GatedProjection(layer.twoBody_bond, widths.angle_edge())

    def _messages(self, atom_feas, bond_feas, angle_feas, bond_graph) -> Tensor:
        return self.mlp(self.bonds.parts(atom_feas, bond_feas, angle_feas, bond_graph))


class _BondConv(_AngleEdges):
    """`chgnet.model.layers.BondConv`."""

    def forward(self, atom_feas, bond_feas, bond_weights, angle_feas, bond_graph):
        from chgnet.model.functions import aggregate

        bond_i, bond_j = bond_graph[:, 1], bond_graph[:, 2]
        update = self._messages(atom_feas, bond_feas, angle_feas, bond_graph)
        update = (
            update * bond_weights.index_select(0, bond_i) * bond_weights.index_select(0, bond_j)
        )
        new = aggregate(update, bond_i, average=False, num_owner=len(bond_feas))
        return _finish(self.layer, new, bond_feas, self.layer.bond_norm)


class _AngleUpdate(_AngleEdges):
    """`chgnet.model.layers.AngleUpdate`."""

    def forward(self, atom_feas, bond_feas, angle_feas, bond_graph):
        new = self._messages(atom_feas, bond_feas, angle_feas, bond_graph)
        return _finish(self.layer, new, angle_feas, self.layer.angle_norm)
