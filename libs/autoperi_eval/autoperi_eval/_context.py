"""What one evaluation run shares: settings, cache, process pools, timings, notes."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autoperi_data import SplitSpec, split_path

from ._cache import Cache, default_cache_dir
from ._chgnet import RelaxSettings, Scorer
from ._config import EvalSettings
from ._hull_reference import HullReference
from ._io import EvalInputError, load_split
from ._parallel import Pool, ProgressFn
from ._structs import SampleRecord

logger = logging.getLogger("autoperi_eval")


class Context:
    """Resources of one run. Use as a context manager: pools are stopped on exit."""

    def __init__(
        self,
        settings: EvalSettings,
        spec: SplitSpec,
        data_dir: Path,
        progress: ProgressFn | None,
    ) -> None:
        self.settings = settings
        self.spec = spec
        self.data_dir = data_dir
        self.progress = progress
        directory = (settings.cache_dir or default_cache_dir()) if settings.use_cache else None
        self.cache = Cache(directory)
        self.pool = Pool(settings.n_workers)
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []
        self._scorer: Scorer | None = None
        self._hull_records: list[SampleRecord] | None = None
        self._hull_reference: HullReference | None = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.close()
        if self._scorer is not None:
            self._scorer.close()
        self.cache.close()

    @property
    def scorer(self) -> Scorer:
        """The CHGNet pool, started on first use."""
        if self._scorer is None:
            self._scorer = Scorer(
                self.cache, self.settings.chgnet_workers, self.settings.chgnet_batch_size
            )
        return self._scorer

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage (accumulated into `timings[name]`, seconds)."""
        start = time.perf_counter()
        logger.info("stage %s", name)
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def note(self, text: str) -> None:
        """Record a remark that goes into the report."""
        if text not in self.notes:
            self.notes.append(text)
            logger.info(text)

    def hull_reference(self) -> HullReference | None:
        """The hull reference file of the settings (read and checked once), or None."""
        path = self.settings.hull_file
        if path is not None and self._hull_reference is None:
            try:
                reference = HullReference.read(path)
                settings = self.settings
                reference.check_protocol(RelaxSettings(settings.relax_steps, settings.relax_fmax))
            except ValueError as error:
                raise EvalInputError(str(error)) from None
            self._hull_reference = reference
        return self._hull_reference

    def hull_records(self) -> list[SampleRecord]:
        """Training + validation crystals of the reference dataset (those splits that exist)."""
        if self._hull_records is None:
            records: list[SampleRecord] = []
            for split in self.settings.hull_splits:
                path = split_path(self.spec.dataset, split, self.data_dir, must_exist=False)
                if not path.is_file():
                    self.note(
                        f"{self.spec.dataset}:{split} is not available; hull and novelty "
                        f"reference use the other splits only"
                    )
                    continue
                records.extend(load_split(self.data_dir, self.spec.dataset, split, self.cache))
            self._hull_records = [r for r in records if r.constructed]
        return self._hull_records
