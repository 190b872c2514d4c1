"""A round's candidates: the messages stored and handed on as they came, and read as Crystals
(each converted once, on first use) for the round's Python logic."""

from autoperi.crystal.v1 import crystal_pb2
from trainer_svc.testing import perov_subset
from xtal import convert

from loop_svc import Candidates


def _messages(data_dir, n=4):
    return [convert.to_proto(c) for c in perov_subset(data_dir, n)]


def test_the_file_holds_the_messages_as_they_came(data_dir, tmp_path):
    messages = _messages(data_dir)
    messages[0].content_hash = "kept"  # a field a Crystal has no place for survives
    candidates = Candidates(messages)
    candidates.write(tmp_path / "candidates.pb")
    stored = (tmp_path / "candidates.pb").read_bytes()
    assert stored == crystal_pb2.CrystalBatch(crystals=messages).SerializeToString()
    assert not list(tmp_path.glob("*.tmp"))
    back = Candidates.read(tmp_path / "candidates.pb")
    assert back.messages == tuple(messages) and back.messages[0].content_hash == "kept"
    assert candidates.chosen([2, 0]) == [messages[2], messages[0]]
    assert candidates.chosen([1])[0] is messages[1]  # handed on, not copied


def test_crystals_are_converted_once_on_first_use(data_dir):
    crystals = perov_subset(data_dir, 3)
    candidates = Candidates(convert.to_proto(c) for c in crystals)
    assert len(candidates) == 3
    first = candidates[0]
    assert first is candidates[0] and first == crystals[0]
    assert candidates[-1] == crystals[2] and candidates[1:] == crystals[1:]
    assert [c.content_hash() for c in candidates] == [c.content_hash() for c in crystals]
