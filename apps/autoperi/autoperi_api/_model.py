"""`load` a checkpoint as a `Model`: predict structures for compositions, generate de novo,
restore lattices; one crystal per sample, reproducible from `seed`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from autoperi_model import Generator, element_numbers
from xtal import Crystal

__all__ = ["Crystal", "Model", "load"]


def load(checkpoint: str | Path, task: str | None = None) -> Model:
    """The model of a checkpoint directory (any registered kind); with `task` (csp, dng,
    lattice), a checkpoint that does not serve it is refused with the reason (ValueError)."""
    return Model(Generator.from_checkpoint(checkpoint, tasks=(task,) if task else None))


class Model:
    """A loaded checkpoint. `tasks`: what it serves (csp: `predict`, dng: `generate`, lattice:
    `restore_lattices`); `checkpoint_id`: the id its crystals carry as provenance."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    @property
    def tasks(self) -> frozenset[str]:
        return self.generator.tasks

    @property
    def checkpoint_id(self) -> str:
        return self.generator.checkpoint_id

    def __repr__(self) -> str:
        return f"Model({self.generator.kind}, tasks={sorted(self.tasks)}, id={self.checkpoint_id})"

    def predict(
        self, compositions: Sequence[str], n: int = 1, steps: int | None = None, seed: int = 0
    ) -> list[Crystal]:
        """`n` structures per composition (e.g. "SrTiO3": the atoms of one cell), grouped by
        composition; `steps` integration steps (default: the checkpoint's)."""
        return self.generator.generate_csp(compositions, n, steps, seed=seed)

    def predict_split(
        self, split: str, n: int = 1, steps: int | None = None, seed: int = 0
    ) -> list[Crystal]:
        """`n` structures per row of a benchmark split (`dataset:split[start:stop]`), each with
        the row it predicts as `properties["gt_index"]` (what `evaluate(..., task="csp")`
        pairs with the reference)."""
        from autoperi_data import parse_split, read_split

        records = read_split(parse_split(split))
        cells = [r.crystal.atomic_numbers for r in records for _ in range(n)]
        rows = [r.index for r in records for _ in range(n)]
        indices = [j for _ in records for j in range(n)]  # row-wise: k samples of each row
        crystals = self.generator.generate_types(cells, steps, seed=seed, indices=indices)
        return [
            c.replace(properties={**c.properties, "gt_index": float(row)})
            for c, row in zip(crystals, rows, strict=True)
        ]

    def generate(
        self,
        n: int,
        steps: int | None = None,
        seed: int = 0,
        elements: Sequence[str] = (),
        atoms: tuple[int, int] = (1, 0),
        required: Sequence[str] = (),
        space_group: int | None = None,
    ) -> list[Crystal]:
        """`n` de novo crystals whose elements are among `elements` (symbols; empty: any), that
        each contain every element of `required`, whose atom counts lie in `atoms` = (min, max)
        (max 0: no bound) and, for checkpoints that take it, in space group `space_group`
        (ValueError naming the condition a checkpoint cannot honour)."""
        max_z = self.generator.max_z
        numbers = element_numbers(elements, max_z) if elements else ()
        needed = element_numbers(required, max_z) if required else ()
        conditions = {} if space_group is None else {"space_group_number": space_group}
        return self.generator.generate_dng(
            n, steps, seed=seed, elements=numbers, atoms=atoms, required=needed,
            conditions=conditions,
        )  # fmt: skip

    def restore_lattices(
        self, crystals: Sequence[Crystal], steps: int | None = None, seed: int = 0
    ) -> list[Crystal]:
        """The crystals with their lattices restored (atoms and fractional coordinates kept)."""
        return self.generator.restore_lattices(crystals, steps, seed=seed)
