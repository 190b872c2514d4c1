"""Benchmark splits as reproducible dataset commits, and training data from their shards.

The one data path of training (`autoperi train`, `autoperi bench train`): a split file is
ingested once through the ingest service's core (sandboxed parsing, validation,
canonicalisation, dedup by content hash) as dataset `<dataset>`, branch `<split>`, into a local
store (`build/datasets` by default); the featurestore's core builds the commit's tensor shards;
training reads those shards (`TrainingData.from_shards`), its data version naming the commits.

The store's commits are stamped with a constant clock, so a commit id depends only on what was
ingested: the same split file gives the same commit id on any machine. That is how a model card
names its data reproducibly: `autoperi data commit perov_5:train` prints the id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from autoperi_data import parse_split, read_split, split_path
from autoperi_model import Config, CrystalTable, TrainingData, table_from_shards

DEFAULT_STORE = Path("build/datasets")
EPOCH = 0.0  # the timestamp of every commit of the store: commit ids depend on content alone
_SOURCE_KEY = "source_sha256"


@dataclass(frozen=True)
class SplitCommit:
    """A split ingested as a dataset commit: where it came from and what was kept."""

    dataset: str
    branch: str
    commit: str
    source_sha256: str
    num_crystals: int

    def __str__(self) -> str:
        return f"{self.dataset}/{self.branch}@{self.commit}"


class DatasetStore:
    """The local store of benchmark dataset commits (objects and versions under `root`)."""

    def __init__(self, root: str | Path = DEFAULT_STORE) -> None:
        from storage import LocalObjectStore, LocalVersionStore

        self.root = Path(root)
        self.objects = LocalObjectStore(self.root)
        self.versions = LocalVersionStore(self.objects, clock=lambda: EPOCH)

    def split_commit(self, spec: str) -> SplitCommit:
        """The commit of the split `dataset:split`, ingesting its file on first use. A branch
        that holds another file's crystals is an error (use a fresh store)."""
        parsed = parse_split(spec)
        path = split_path(parsed.dataset, parsed.split)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        found = self._existing(parsed.dataset, parsed.split)
        if found is not None:
            if found.source_sha256 != digest:
                raise ValueError(
                    f"{self.root} holds {found} from another {path.name} (sha256 "
                    f"{found.source_sha256[:12]}, file {digest[:12]}): use a fresh --datasets store"
                )
            return found
        return self._ingest(parsed.dataset, parsed.split, path, digest)

    def _existing(self, dataset: str, branch: str) -> SplitCommit | None:
        from autoperi_data import CRYSTALS_PREFIX, repo_name

        repo = repo_name(dataset)
        if not self.versions.repository_exists(repo):
            return None
        if branch not in self.versions.list_branches(repo):
            return None
        commit = self.versions.get_commit(repo, self.versions.head(repo, branch))
        count = len(self.versions.tree(repo, commit.id, CRYSTALS_PREFIX))
        source = commit.metadata.get(_SOURCE_KEY, "")
        return SplitCommit(dataset, branch, commit.id, source, count)

    def _ingest(self, dataset: str, branch: str, path: Path, digest: str) -> SplitCommit:
        from ingest_svc import IngestCore, IngestTarget

        target = IngestTarget(
            dataset=dataset, branch=branch, message=f"{dataset}:{branch} ({path.name})",
            create_dataset=True, create_branch_from="main", source=f"{dataset}:{branch}",
            metadata={_SOURCE_KEY: digest},
        )  # fmt: skip
        core = IngestCore(self.versions)
        try:
            session = core.begin(target)
            session.add_csv(path.name, path.read_text(encoding="utf-8"))
            session.finish()
        finally:
            core.close()
        return self._existing(dataset, branch)

    def shards(self, commit: SplitCommit) -> list[dict]:
        """The featurestore's tensor shards (default featuriser: canonical cells, no graphs) of
        a commit, built on first use, loaded in the commit's (content-hash) order."""
        from featurestore_svc import FeatureRequest, FeatureStoreCore, resolve_config
        from trainer_svc import read_shards

        core = FeatureStoreCore(self.objects, self.versions)
        try:
            request = FeatureRequest(
                commit.dataset, commit.commit, resolve_config("", "{}"), ("tensor_shards",)
            )
            [future] = core.ensure(request)
            refs = future.result()["artifacts"]["tensor_shards"]
        finally:
            core.close()
        return read_shards(refs, self.objects)

    def crystals(self, commit: SplitCommit) -> list:
        """The commit's crystals (`xtal.Crystal`), in content-hash order (as the featurestore
        reads them)."""
        from autoperi_data import commit_crystals

        return commit_crystals(self.versions, commit.dataset, commit.commit)

    def reference_energies(self, commit: SplitCommit, cache_dir: Path | None) -> dict:
        """The featurestore's reference energies of a commit (a hull reference document, see
        `autoperi_eval.HullReference`), built on first use with CHGNet energies cached under
        `cache_dir` (None: in memory)."""
        from featurestore_svc import FeatureRequest, FeatureStoreCore, resolve_config

        core = FeatureStoreCore(self.objects, self.versions, energy_cache_dir=cache_dir)
        try:
            request = FeatureRequest(
                commit.dataset, commit.commit, resolve_config("", "{}"), ("reference_energies",)
            )
            [future] = core.ensure(request)
            [ref] = future.result()["artifacts"]["reference_energies"]
        finally:
            core.close()
        return json.loads(self.objects.get_blob(ref["sha256"]))

    def training_data(self, config: Config) -> TrainingData:
        """The train and val tables of `config.data`, from the shards of their split commits;
        the version names both commits. With `held_out_rows` n, the val split's first n rows
        (file order, by material id) are the validation table and its other rows join the
        training table. Symmetric flows get the idealised crystals with their operations."""
        data = config.data
        train = self.split_commit(f"{data.dataset}:{data.train_split}")
        val = self.split_commit(f"{data.dataset}:{data.val_split}")
        version = f"{train} {val}"
        if data.held_out_rows:
            out = self._held_out(data, train, val)
        else:
            out = TrainingData.from_shards(self.shards(train), self.shards(val), version)
        return out.symmetric() if config.flow.symmetric else out

    def _held_out(self, data, train: SplitCommit, val: SplitCommit) -> TrainingData:
        spec = f"{data.dataset}:{data.val_split}[:{data.held_out_rows}]"
        held = {r.crystal.id for r in read_split(parse_split(spec))}
        shards = self.shards(val)
        rest = table_from_shards(shards, keep=lambda ident: ident not in held)
        pool = CrystalTable.concat([table_from_shards(self.shards(train)), rest])
        version = f"{train} + {val} without rows [:{data.held_out_rows}]; held out: {spec}"
        return TrainingData(pool, table_from_shards(shards, keep=held.__contains__), version)
