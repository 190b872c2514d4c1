"""Run records in the object store, so a restarted service still answers for its runs.

Keys: `training/runs/<run_id>/run.pb` (the Run message), `training/runs/<run_id>/events.bin`
(records of 8-byte big-endian step, 4-byte length, StreamMetricsResponse bytes) and
`training/requests/<sha256 of request_id>` (the run id; written with compare-and-swap, so one
request id starts one run even across processes).
"""

import hashlib
import struct

from autoperi.training.v1 import training_pb2 as pb
from storage import ObjectNotFound, ObjectStore, PreconditionFailed

PREFIX = "training/runs/"
_HEADER = struct.Struct(">QI")


class RunStore:
    """Persistence of runs and their event history over an ObjectStore."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    def save(self, run: pb.Run, events: list[tuple[int, pb.StreamMetricsResponse]]) -> None:
        """Write the run and its whole event history (each object atomically)."""
        body = b"".join(
            _HEADER.pack(step, len(data)) + data
            for step, data in ((s, e.SerializeToString()) for s, e in events)
        )
        self.objects.put_bytes(f"{PREFIX}{run.run_id}/events.bin", body)
        self.objects.put_bytes(f"{PREFIX}{run.run_id}/run.pb", run.SerializeToString())

    def load_all(self) -> list[tuple[pb.Run, list[tuple[int, pb.StreamMetricsResponse]]]]:
        """Every stored run with its events."""
        out = []
        for key in self.objects.list_keys(PREFIX):
            if key.endswith("/run.pb"):
                run = pb.Run.FromString(self.objects.get_bytes(key))
                out.append((run, self._events(run.run_id)))
        return out

    def _events(self, run_id: str) -> list[tuple[int, pb.StreamMetricsResponse]]:
        try:
            body = self.objects.get_bytes(f"{PREFIX}{run_id}/events.bin")
        except ObjectNotFound:
            return []
        events, pos = [], 0
        while pos < len(body):
            step, size = _HEADER.unpack_from(body, pos)
            pos += _HEADER.size
            events.append((step, pb.StreamMetricsResponse.FromString(body[pos : pos + size])))
            pos += size
        return events

    def claim_request(self, request_id: str, run_id: str) -> str:
        """The run id owning `request_id`: `run_id` if this call claimed it, else the owner's."""
        key = f"training/requests/{hashlib.sha256(request_id.encode()).hexdigest()}"
        try:
            self.objects.compare_and_swap(key, run_id.encode(), None)
            return run_id
        except PreconditionFailed:
            return self.objects.get_bytes(key).decode()
