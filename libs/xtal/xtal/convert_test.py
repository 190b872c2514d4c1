"""Crystal <-> protobuf message, and `import xtal` without the generated code."""

import subprocess
import sys

import numpy as np
import pytest

from xtal import Crystal, Provenance

pb2 = pytest.importorskip("autoperi.crystal.v1.crystal_pb2", reason="run `make protos` first")
from xtal import convert  # noqa: E402


def sample() -> Crystal:
    rng = np.random.default_rng(8)
    return Crystal(
        np.eye(3) * 4.1 + rng.normal(scale=0.3, size=(3, 3)),
        rng.uniform(-0.3, 1.3, size=(3, 3)),
        [1, 8, 118],
        properties={"energy_per_atom": -1.0 / 3.0, "band_gap": 0.0},
        id="x-1",
        provenance=Provenance("perov_5:test", "17", "perov_5", "abc123", "ckpt-9"),
    )


def test_round_trip_is_exact():
    crystal = sample()
    message = convert.to_proto(crystal)
    assert isinstance(message, pb2.Crystal) and message.content_hash == ""
    back = convert.from_proto(pb2.Crystal.FromString(message.SerializeToString()))
    assert back == crystal


def test_message_fields_follow_the_proto_layout():
    crystal = sample()
    message = convert.to_proto(crystal, include_hash=True)
    assert message.content_hash == crystal.content_hash()
    assert [message.lattice.b.x, message.lattice.b.y, message.lattice.b.z] == crystal.lattice[
        1
    ].tolist()
    assert [site.atomic_number for site in message.sites] == [1, 8, 118]
    assert message.sites[2].frac_coords.z == crystal.frac_coords[2, 2]
    assert message.provenance.generator == "ckpt-9" and not message.provenance.HasField("created")


def test_as_proto_passes_messages_through_and_converts_crystals():
    crystal = sample()
    message = convert.to_proto(crystal)
    assert convert.as_proto(message) is message  # no copy, no round trip through Crystal
    assert convert.as_proto(crystal) == message
    with pytest.raises(TypeError, match=r"crystal\.v1\.Crystal message"):
        convert.as_proto(crystal.to_pymatgen())


def test_empty_message_gives_an_invalid_crystal_not_an_exception():
    crystal = convert.from_proto(pb2.Crystal())
    assert crystal.num_atoms == 0 and crystal.volume == 0.0


def test_import_xtal_does_not_need_generated_code():
    script = (
        "import sys; sys.modules['autoperi'] = None\n"
        "import xtal, xtal.convert\n"
        "try:\n    xtal.convert.to_proto(None)\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "make protos" in result.stdout
