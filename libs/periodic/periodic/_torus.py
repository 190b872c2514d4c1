"""The flat torus [0, 1)^3 of fractional coordinates: wrap, logmap and expmap.

Like flowmm's ``FlatTorus01``: ``expmap(x, u) = (x + u) mod 1`` and
``logmap(x, y) = wrap_delta(y - x)``, the shortest displacement from x to y on the torus.
All functions are elementwise, so any shape works; gradients pass through the wrap unchanged
(the integer shift has zero derivative).
"""

import torch
from torch import Tensor


def wrap(x: Tensor) -> Tensor:
    """``x mod 1`` into ``[0, 1)`` exactly.

    ``x - floor(x)`` can round to 1.0 for tiny negative x (e.g. -1e-17); those values map to 0.
    """
    y = x - torch.floor(x).detach()
    return torch.where(y >= 1.0, y - 1.0, y)


def wrap_delta(delta: Tensor) -> Tensor:
    """Shortest representative ``d - round(d)`` of a fractional displacement, in ``[-0.5, 0.5]``."""
    return delta - torch.round(delta).detach()


def torus_logmap(x: Tensor, y: Tensor) -> Tensor:
    """Tangent vector at x pointing to y along the shortest geodesic: ``wrap_delta(y - x)``."""
    return wrap_delta(y - x)


def torus_expmap(x: Tensor, u: Tensor) -> Tensor:
    """Point reached from x along the tangent vector u: ``(x + u) mod 1``."""
    return wrap(x + u)
