"""Crystal <-> `autoperi.crystal.v1.Crystal` message (the only module using generated protos).

The generated module is imported on first use, so `import xtal` works without it. Doubles
everywhere: the conversion is exact. `Provenance.created` has no Crystal counterpart and is left
unset on the way out and ignored on the way in.
"""

from typing import Any

import numpy as np

from xtal._crystal import Crystal, Provenance

_PROVENANCE_FIELDS = ("source", "record", "dataset", "dataset_commit", "generator")


def _pb2() -> Any:
    try:
        from autoperi.crystal.v1 import crystal_pb2
    except ImportError as exc:
        raise ImportError(
            f"the generated protobuf code is missing ({exc}); run `make protos`"
        ) from None
    return crystal_pb2


def to_proto(crystal: Crystal, *, include_hash: bool = False) -> Any:
    """The crystal as a `crystal_pb2.Crystal`; with `include_hash`, `content_hash` is filled."""
    pb2 = _pb2()
    message = pb2.Crystal(id=crystal.id)
    for name, row in zip(("a", "b", "c"), crystal.lattice, strict=True):
        _set_vector(getattr(message.lattice, name), row)
    for z, frac in zip(crystal.atomic_numbers, crystal.frac_coords, strict=True):
        site = message.sites.add(atomic_number=int(z))
        _set_vector(site.frac_coords, frac)
    message.properties.update(crystal.properties)
    for name in _PROVENANCE_FIELDS:
        setattr(message.provenance, name, getattr(crystal.provenance, name))
    if include_hash:
        message.content_hash = crystal.content_hash()
    return message


def as_proto(item: Any) -> Any:
    """`item` as a `crystal_pb2.Crystal`: a message is returned as it is (not copied), a Crystal
    is converted (`to_proto`). TypeError for anything else. For senders that take both, so a
    message received from one service goes on to the next without a round trip through Crystal."""
    pb2 = _pb2()
    if isinstance(item, pb2.Crystal):
        return item
    if isinstance(item, Crystal):
        return to_proto(item)
    raise TypeError(f"expected an xtal.Crystal or a crystal.v1.Crystal message, got {type(item)}")


def from_proto(message: Any) -> Crystal:
    """The Crystal of a `crystal_pb2.Crystal` (not validated: call `.validate()`)."""
    lattice = [_vector(getattr(message.lattice, name)) for name in ("a", "b", "c")]
    frac = np.array([_vector(site.frac_coords) for site in message.sites]).reshape(-1, 3)
    numbers = np.array([site.atomic_number for site in message.sites], dtype=np.int64)
    provenance = Provenance(
        **{name: getattr(message.provenance, name) for name in _PROVENANCE_FIELDS}
    )
    return Crystal(
        np.array(lattice),
        frac,
        numbers,
        properties=dict(message.properties),
        id=message.id,
        provenance=provenance,
    )


def _set_vector(vector: Any, values: np.ndarray) -> None:
    vector.x, vector.y, vector.z = (float(v) for v in values)


def _vector(vector: Any) -> list[float]:
    return [vector.x, vector.y, vector.z]
