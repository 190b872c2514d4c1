"""What the loop engine needs from the other services, and their gRPC implementations.

`LoopClients` bundles one object per service; tests build it against in-process servers, the CLI
from addresses. Each client turns the engine's plain values into requests and back; crystals
travel as `crystal.v1.Crystal` messages from the sampler's reply to the scorer and the ingest
(an `xtal.Crystal` is accepted too, and converted). Channels are secured by the
AUTOPERI_TLS_* / AUTOPERI_AUTH_TOKEN variables (`svc_kit.open_channel`), plaintext without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
from autoperi.common.v1 import common_pb2
from autoperi.crystal.v1 import crystal_pb2
from autoperi.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from autoperi.sampler.v1 import sampler_pb2, sampler_pb2_grpc
from autoperi.scorer.v1 import scorer_pb2, scorer_pb2_grpc
from autoperi.training.v1 import training_pb2 as tpb
from storage import ObjectStore
from svc_kit import open_channel
from xtal import Crystal
from xtal.convert import as_proto

from loop_svc._spec import ChemicalSpace

BATCH = 256  # crystals per ingest message


CrystalMessage = crystal_pb2.Crystal
Sendable = CrystalMessage | Crystal  # messages are sent as they are, Crystals converted


class Sampler(Protocol):
    """Candidates and the checkpoint id that made them: `sample`, CSP, `n` crystals per
    composition, in order; `sample_de_novo`, `n` de novo crystals on a chemical space."""

    def sample(
        self, compositions: Sequence[str], n: int, steps: int, seed: int, checkpoint_id: str
    ) -> tuple[list[CrystalMessage], str]: ...

    def sample_de_novo(
        self, space: ChemicalSpace, n: int, steps: int, seed: int, checkpoint_id: str
    ) -> tuple[list[CrystalMessage], str]: ...


class Scorer(Protocol):
    """Scores (scorer_svc.Scores) per crystal, in order: novelty against (dataset, ref) (no
    novelty check when `dataset` is None); with `relax`, of the relaxed structures, whose cells
    come back in `Scores.lattice` / `frac_coords`."""

    def has_hull(self) -> bool: ...

    def score(
        self, crystals: Sequence[Sendable], dataset: str | None, ref: str, relax: bool = False
    ) -> list[Any]: ...


class Evaluator(Protocol):
    """Held-out metrics of a checkpoint, e.g. {"match_rate": 0.4, "rmse": 0.1, "n": 50}."""

    def evaluate(self, checkpoint_id: str) -> dict[str, float]: ...


@dataclass(frozen=True)
class LoopClients:
    """The services a loop talks to, and the object store that holds checkpoints."""

    sampler: Sampler
    scorer: Scorer
    ingest: IngestClient
    trainer: TrainerClient
    evaluator: Evaluator
    objects: ObjectStore


class GrpcSampler:
    """The sampler service (Ray Serve); it samples from the checkpoint it serves."""

    def __init__(self, address: str, timeout_s: float = 600.0) -> None:
        self.address, self.timeout_s = address, timeout_s

    def sample(
        self, compositions: Sequence[str], n: int, steps: int, seed: int, checkpoint_id: str
    ) -> tuple[list[CrystalMessage], str]:
        """The replies' messages as they came; `checkpoint_id` is not sent: the served checkpoint
        is used and returned."""
        from sampler_svc.client import CHANNEL_OPTIONS, csp_spec, metadata

        crystals, served = [], ""
        with open_channel(self.address, options=CHANNEL_OPTIONS) as channel:
            stub = sampler_pb2_grpc.SamplerServiceStub(channel)
            for k, composition in enumerate(compositions):
                spec = csp_spec(composition, n, steps, seed=seed + k)
                reply = stub.Sample(
                    sampler_pb2.SampleRequest(spec=spec),
                    timeout=self.timeout_s,
                    metadata=metadata(timeout=self.timeout_s),
                )
                crystals.extend(reply.crystals)
                served = reply.checkpoint_id
        return crystals, served

    def sample_de_novo(
        self, space: ChemicalSpace, n: int, steps: int, seed: int, checkpoint_id: str
    ) -> tuple[list[CrystalMessage], str]:
        """One de novo request (`sampler.v1.DeNovoTask` of the space); `checkpoint_id` is not
        sent, as in `sample`."""
        from sampler_svc.client import CHANNEL_OPTIONS, metadata

        spec = de_novo_request(space, n, steps, seed)
        with open_channel(self.address, options=CHANNEL_OPTIONS) as channel:
            reply = sampler_pb2_grpc.SamplerServiceStub(channel).Sample(
                sampler_pb2.SampleRequest(spec=spec),
                timeout=self.timeout_s,
                metadata=metadata(timeout=self.timeout_s),
            )
        return list(reply.crystals), reply.checkpoint_id


def de_novo_request(space: ChemicalSpace, n: int, steps: int, seed: int) -> sampler_pb2.SampleSpec:
    """The sampler's de novo SampleSpec of `n` samples on `space` (DeNovoTask: elements,
    required elements, atom range), `steps` integration steps (0: the checkpoint's), `seed`."""
    from sampler_svc.client import de_novo_spec

    atoms = (space.min_atoms, space.max_atoms)
    return de_novo_spec(n, space.elements, space.required, atoms, steps=steps, seed=seed)


class GrpcScorer:
    """The scorer service (CHGNet energies, validity, novelty, hull). Relaxations follow
    `relax_steps` / `fmax` (default: `autoperi_eval.RelaxSettings`, the bounded protocol the
    hull reference was relaxed with, so that E_hull compares like with like)."""

    def __init__(
        self,
        address: str,
        relax: bool = False,
        timeout_s: float = 1800.0,
        relax_steps: int = 100,
        fmax: float = 0.1,
    ) -> None:
        self.address, self.relax, self.timeout_s = address, relax, timeout_s
        self.relax_steps, self.fmax = relax_steps, fmax

    def has_hull(self) -> bool:
        with open_channel(self.address) as channel:
            stub = scorer_pb2_grpc.ScorerServiceStub(channel)
            info = stub.GetScorerInfo(scorer_pb2.GetScorerInfoRequest(), timeout=30)
        return info.hull_configured

    def score(
        self, crystals: Sequence[Sendable], dataset: str | None, ref: str, relax: bool = False
    ) -> list[Any]:
        """One scorer_svc.Scores per crystal, in order (messages are sent as they are); relaxed
        when `relax` (or this client's `relax`), with the relaxed cells."""
        from scorer_svc import Reference, ScoreOptions
        from scorer_svc.client import score

        relax = relax or self.relax
        options = ScoreOptions(
            relax=relax,
            max_relax_steps=self.relax_steps,
            fmax=self.fmax,
            include_relaxed_crystal=relax,
            novelty_reference=None if dataset is None else Reference(dataset, ref),
        )
        return score(self.address, crystals, options, timeout_s=self.timeout_s)


class IngestClient:
    """Datasets, branches, commits and merges of the ingest service."""

    def __init__(self, address: str, timeout_s: float = 600.0) -> None:
        self.address, self.timeout_s = address, timeout_s

    def _stub(self, channel: grpc.Channel) -> ingest_pb2_grpc.IngestServiceStub:
        return ingest_pb2_grpc.IngestServiceStub(channel)

    def ingest(
        self, dataset: str, branch: str, source: str, crystals: Sequence[Sendable], **header
    ) -> ingest_pb2.IngestResponse:
        """Add `crystals` to `branch` (created from `source` when missing); duplicates by
        content hash are counted, not added. Messages are sent as they are; the ingest validates
        and canonicalises each (rejected ones are counted in the reply, with their reasons)."""
        head = ingest_pb2.IngestHeader(
            dataset=dataset, branch=branch, create_branch_from=source, **header
        )
        protos = [as_proto(c) for c in crystals]

        def requests():
            yield ingest_pb2.IngestRequest(header=head)
            for start in range(0, len(protos), BATCH):
                batch = crystal_pb2.CrystalBatch(crystals=protos[start : start + BATCH])
                yield ingest_pb2.IngestRequest(crystals=batch)

        with open_channel(self.address) as channel:
            return self._stub(channel).Ingest(requests(), timeout=self.timeout_s)

    def branches(self, dataset: str) -> dict[str, ingest_pb2.Branch]:
        """name -> Branch (head commit, crystal count) of a dataset."""
        with open_channel(self.address) as channel:
            request = ingest_pb2.GetDatasetRequest(dataset=dataset)
            reply = self._stub(channel).GetDataset(request, timeout=60)
        return {b.name: b for b in reply.dataset.branches}

    def merge(self, dataset: str, source: str, destination: str, message: str) -> str:
        """Merge `source` into `destination` (fails on conflicts); the merge commit id."""
        request = ingest_pb2.MergeRequest(
            dataset=dataset,
            source_ref=source,
            destination_branch=destination,
            message=message,
            strategy=ingest_pb2.MERGE_STRATEGY_FAIL_ON_CONFLICT,
        )
        with open_channel(self.address) as channel:
            reply = self._stub(channel).Merge(request, timeout=self.timeout_s)
        if reply.conflicts:
            n = len(reply.conflicts)
            raise RuntimeError(f"merge of {source} into {destination}: {n} conflicts")
        return reply.commit_id

    def read_crystals(self, dataset: str, ref: str, limit: int) -> tuple[str, list[Crystal]]:
        """(commit id, the first `limit` crystals by content hash) of `ref`."""
        from xtal.convert import from_proto

        request = ingest_pb2.ReadCrystalsRequest(
            ref=common_pb2.DatasetRef(dataset=dataset, ref=ref), batch_size=512, limit=limit
        )
        commit, crystals = "", []
        with open_channel(self.address) as channel:
            for reply in self._stub(channel).ReadCrystals(request, timeout=self.timeout_s):
                commit = reply.commit_id
                crystals.extend(from_proto(c) for c in reply.crystals)
        return commit, crystals

    def content_hashes(self, dataset: str, ref: str) -> list[str]:
        """Content hashes of every crystal at `ref`, sorted."""
        request = ingest_pb2.ReadCrystalsRequest(
            ref=common_pb2.DatasetRef(dataset=dataset, ref=ref), batch_size=512
        )
        with open_channel(self.address) as channel:
            replies = self._stub(channel).ReadCrystals(request, timeout=self.timeout_s)
            return sorted(c.content_hash for r in replies for c in r.crystals)


class TrainerClient:
    """Fine-tuning runs on the trainer service."""

    def __init__(self, address: str, timeout_s: float = 7200.0) -> None:
        self.address, self.timeout_s = address, timeout_s

    def start(self, *, train_dataset: tuple[str, str], **fields) -> tpb.Run:
        """StartRun (`fields` of StartRunRequest); the same run again for a repeated request_id."""
        from trainer_svc.client import start_run

        with open_channel(self.address) as channel:
            return start_run(channel, train_dataset=train_dataset, **fields)

    def wait(self, run_id: str) -> tpb.Run:
        """The run once it has ended (succeeded, failed or cancelled)."""
        from trainer_svc.client import wait

        with open_channel(self.address) as channel:
            return wait(channel, run_id, timeout=self.timeout_s)

    def runs(self, labels: dict[str, str]) -> list[tpb.Run]:
        """Runs carrying all of `labels` (first page of up to 1000)."""
        from trainer_svc.client import stub

        request = tpb.ListRunsRequest(labels=labels, page_size=1000)
        with open_channel(self.address) as channel:
            return list(stub(channel).ListRuns(request, timeout=60).runs)


def fetch_checkpoint_dir(objects: ObjectStore, checkpoint_id: str, cache: Path) -> Path:
    """The checkpoint's files under `cache/<id>` (downloaded once, verified)."""
    from trainer_svc.client import checkpoint_files

    dest = Path(cache) / checkpoint_id
    if not (dest / ".complete").exists():
        checkpoint_files(objects, checkpoint_id, dest)
        (dest / ".complete").touch()
    return dest
