"""Template retrieval for crystal structure prediction (SCIENCE.md 4.6): training crystals with the
query's cell stoichiometry, their elements substituted, described for a ranker.

A query cell (atomic numbers) and a library crystal are compatible when they have the same number
of atoms and the same sorted element counts (the "key"). Within each group of elements of equal
count, query elements replace the template's by the assignment of least total cost; two costs are
used: the Mendeleev-number distance (the no-learning lookup's) and a substitution score learned
from the library (how often two elements occupy the same Wyckoff sites of the same prototype,
as pointwise mutual information). Candidates are the best `top_mendeleev` by the first and the
best `top_learned` by the second; `FEATURES` describe each for the ranker (`_ranking`).
A prototype is a space group with the multiset of per-element Wyckoff signatures (anonymous).
"known_structure" says whether a candidate is, by the evaluation protocol's StructureMatcher
tolerances (`SAME_STRUCTURE`), a structure the library already holds for the query's composition
(the queried crystal itself excluded): whether that is evidence for or against it is the
dataset's to say and the ranker's to learn.
"""

from __future__ import annotations

import collections
import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from autoperi_data import CrystalArrays
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Element

from autoperi_model._symmetry_data import SymmetricCrystals

MAX_Z = 103
FEATURES = (
    "mendeleev", "mendeleev_max", "mendeleev_rank", "mendeleev_gap",
    "learned", "learned_rank", "learned_gap", "learned_of_mendeleev", "learned_min",
    "electronegativity", "electronegativity_max", "radius", "radius_max",
    "vote10", "vote10_learned", "weighted_vote", "popularity", "popularity_share",
    "log_candidates", "num_atoms", "num_elements", "space_group",
    "same_composition", "polymorphs", "same_assignment", "known_structure",
)  # fmt: skip
#: StructureMatcher tolerances of the CSP evaluation protocol (SCIENCE.md 5.1)
SAME_STRUCTURE = {"stol": 0.5, "ltol": 0.3, "angle_tol": 10.0}
_PERMUTATIONS = {g: np.array(list(itertools.permutations(range(g)))) for g in range(1, 8)}


def _element_table() -> dict[str, np.ndarray]:
    """Mendeleev number, Pauling electronegativity and atomic radius by Z (0: unused)."""
    out = {k: np.zeros(MAX_Z + 1) for k in ("mendeleev", "electronegativity", "radius")}
    with warnings.catch_warnings():  # noble gases have no Pauling electronegativity
        warnings.simplefilter("ignore")
        for z in range(1, MAX_Z + 1):
            el = Element.from_Z(z)
            out["mendeleev"][z] = el.mendeleev_no or 0
            out["electronegativity"][z] = el.X if np.isfinite(el.X) else 2.0
            out["radius"][z] = float(el.atomic_radius or 1.5)
    return out


ELEMENTS = _element_table()


def composition_key(numbers: np.ndarray) -> tuple[int, tuple[int, ...]]:
    """(atoms in the cell, sorted element counts) of atomic numbers (n,)."""
    counts = collections.Counter(np.asarray(numbers).tolist())
    return len(numbers), tuple(sorted(counts.values()))


def count_groups(numbers: np.ndarray) -> dict[int, list[int]]:
    """Elements (sorted by Z) grouped by their count in the cell."""
    groups: dict[int, list[int]] = collections.defaultdict(list)
    for z, c in sorted(collections.Counter(np.asarray(numbers).tolist()).items()):
        groups[c].append(z)
    return dict(groups)


@dataclass(frozen=True)
class Candidate:
    """A template for a query: library index, element map (template Z -> query Z), features."""

    index: int
    mapping: dict[int, int]
    features: np.ndarray  # (len(FEATURES),)


class TemplateLibrary:
    """Idealised training crystals indexed by composition key, with prototypes and a learned
    element-substitution score (see the module notes)."""

    def __init__(
        self, crystals: SymmetricCrystals, prototype: np.ndarray, substitution: np.ndarray
    ) -> None:
        self.crystals = crystals
        self.prototype = np.asarray(prototype, dtype=np.int64)  # (C,)
        self.substitution = np.asarray(substitution, dtype=float)  # (MAX_Z + 1, MAX_Z + 1)
        self.costs = {
            "mendeleev": np.abs(ELEMENTS["mendeleev"][:, None] - ELEMENTS["mendeleev"][None]),
            "learned": -self.substitution,
        }
        self._index_keys()

    def _index_keys(self) -> None:
        members: dict[tuple, list[int]] = collections.defaultdict(list)
        self._numbers = []
        for i in range(len(self.crystals)):
            z = self.crystals.numbers_of(i)
            self._numbers.append(z)
            members[composition_key(z)].append(i)
        self.keys = {}
        for key, idx in members.items():
            groups = [count_groups(self._numbers[i]) for i in idx]
            counts = sorted(groups[0])
            elements = [np.array([g[c] for g in groups]) for c in counts]  # (m, group size)
            self.keys[key] = (np.array(idx), counts, elements)
        pairs = zip(members, [self.prototype[idx] for idx in members.values()], strict=True)
        self.popularity = collections.Counter((k, int(p)) for k, ps in pairs for p in ps)
        self.key_size = {k: len(v[0]) for k, v in self.keys.items()}
        self.by_composition: dict[tuple, list[int]] = collections.defaultdict(list)
        for i, z in enumerate(self._numbers):
            self.by_composition[tuple(sorted(z.tolist()))].append(i)

    def __len__(self) -> int:
        return len(self.crystals)

    def substituted(self, index: int, mapping: dict[int, int]) -> CrystalArrays:
        """Library crystal `index` with its elements replaced by `mapping` (template Z -> Z)."""
        crystals = self.crystals
        numbers = np.array([mapping[int(z)] for z in crystals.numbers_of(index)])
        frac = crystals.frac_coords[crystals.atoms_of(index)].numpy()
        return CrystalArrays(crystals.lattice[index].numpy(), numbers, frac)

    def _assign(self, numbers: np.ndarray, cost_name: str):
        """Best assignment per same-key crystal: (indices (m,), total cost (m,), per count group
        (count, query elements (g,), template elements in assigned order (m, g)))."""
        idx, counts, elements = self.keys[composition_key(numbers)]
        query = count_groups(numbers)
        cost = self.costs[cost_name]
        total, groups = np.zeros(len(idx)), []
        for c, tmpl in zip(counts, elements, strict=True):
            q = np.array(query[c])
            perm = tmpl[:, _PERMUTATIONS[len(q)]]  # (m, g!, g)
            each = cost[q[None, None, :], perm].sum(-1)  # (m, g!)
            best = each.argmin(1)
            total += c * each[np.arange(len(idx)), best]
            groups.append((c, q, perm[np.arange(len(idx)), best]))
        return idx, total, groups

    def candidates(
        self,
        numbers: np.ndarray,
        exclude: int | None = None,
        top_mendeleev: int = 20,
        top_learned: int = 10,
        match_known: bool = True,
    ) -> list[Candidate]:
        """The candidates for a query cell (atomic numbers (n,)), `exclude` left out (a library
        crystal queried against the rest); [] when no library crystal has the query's key.
        `match_known=False` skips the StructureMatcher check of "known_structure" (it reads 0),
        for an order that does not use that feature."""
        numbers = np.asarray(numbers)
        if composition_key(numbers) not in self.keys:
            return []
        idx, men, men_groups = self._assign(numbers, "mendeleev")
        _, learned, learned_groups = self._assign(numbers, "learned")
        keep = idx != exclude
        if not keep.any():
            return []
        by_men = np.lexsort((idx, np.where(keep, men, np.inf)))[: int(keep.sum())]
        by_learned = np.lexsort((idx, np.where(keep, learned, np.inf)))[: int(keep.sum())]
        chosen = list(dict.fromkeys([*by_men[:top_mendeleev], *by_learned[:top_learned]]))
        same = self.by_composition.get(tuple(sorted(numbers.tolist())), [])
        context = _QueryContext(self, numbers, idx, men, learned, by_men, by_learned)
        known = [i for i in same if i != exclude]
        return [
            Candidate(
                int(idx[j]),
                _mapping(men_groups, j),
                context.features(j, men_groups, learned_groups, known, match_known),
            )
            for j in chosen
        ]


def _pairs(groups, j: int) -> list[tuple[int, int, int]]:
    """(count, query Z, template Z) of candidate j's assignment."""
    return [(c, int(a), int(b)) for c, q, t in groups for a, b in zip(q, t[j], strict=True)]


def _mapping(groups, j: int) -> dict[int, int]:
    return {b: a for _, a, b in _pairs(groups, j)}


class _QueryContext:
    """What the features of one query's candidates share: ranks, votes, popularity."""

    def __init__(self, lib, numbers, idx, men, learned, by_men, by_learned) -> None:
        self.lib, self.idx, self.men, self.learned = lib, idx, men, learned
        self.key = composition_key(numbers)
        self.n = len(numbers)
        self.num_elements = len(set(numbers.tolist()))
        self.men_rank = np.empty(len(idx), int)
        self.men_rank[by_men] = np.arange(len(by_men))
        self.learned_rank = np.empty(len(idx), int)
        self.learned_rank[by_learned] = np.arange(len(by_learned))
        proto = lib.prototype[idx]
        self.proto = proto
        self.top_men = collections.Counter(proto[by_men[:10]].tolist())
        self.top_learned = collections.Counter(proto[by_learned[:10]].tolist())
        self.best_men, self.best_learned = men[by_men[0]], learned[by_learned[0]]
        weights = collections.defaultdict(float)
        for j in by_men[:30]:
            weights[int(proto[j])] += np.exp(-(men[j] - self.best_men) / 2)
        total = sum(weights.values())
        self.weighted = {p: w / total for p, w in weights.items()}
        self.composition = tuple(sorted(numbers.tolist()))
        self.log_candidates = float(np.log(len(by_men)))
        self._matcher = StructureMatcher(**SAME_STRUCTURE)
        self._structures: dict = {}  # library index -> Structure, for known_structure

    def known_structure(self, j: int, mapping: dict[int, int], known: list[int]) -> bool:
        """Whether candidate j matches one of the library crystals `known` (those of the query's
        composition); same space group first, as a cheap filter."""
        lib, group = self.lib, int(self.lib.crystals.space_group[self.idx[j]])
        known = [i for i in known if int(lib.crystals.space_group[i]) == group]
        if not known:
            return False
        mine = lib.substituted(int(self.idx[j]), mapping).to_pymatgen()
        return any(self._matcher.fit(mine, self._known_structure(i)) for i in known)

    def _known_structure(self, index: int):
        """Library crystal `index` (of the query's composition) as a pymatgen Structure, built
        once per query."""
        if index not in self._structures:
            identity = {int(z): int(z) for z in set(self.composition)}
            self._structures[index] = self.lib.substituted(index, identity).to_pymatgen()
        return self._structures[index]

    def features(self, j, men_groups, learned_groups, known, match_known) -> np.ndarray:
        """Candidate j's `FEATURES`; `known`: the library crystals of the query's composition
        (the queried one left out), matched against when `match_known`."""
        lib, n, p = self.lib, self.n, int(self.proto[j])
        pairs = _pairs(men_groups, j)
        d_men, d_x, d_r = (
            [c * abs(ELEMENTS[k][a] - ELEMENTS[k][b]) for c, a, b in pairs]
            for k in ("mendeleev", "electronegativity", "radius")
        )
        sub = [c * lib.substitution[a, b] for c, a, b in pairs]
        same = [(a, b) for _, a, b in pairs] == [(a, b) for _, a, b in _pairs(learned_groups, j)]
        template = tuple(sorted(lib._numbers[self.idx[j]].tolist()))
        pop = lib.popularity[(self.key, p)]
        values = (
            self.men[j] / n, max(d_men), self.men_rank[j], (self.men[j] - self.best_men) / n,
            self.learned[j] / n, self.learned_rank[j], (self.learned[j] - self.best_learned) / n,
            -sum(sub) / n, min(lib.substitution[a, b] for _, a, b in pairs),
            sum(d_x) / n, max(d_x), sum(d_r) / n, max(d_r),
            self.top_men[p], self.top_learned[p], self.weighted.get(p, 0.0),
            np.log1p(pop), pop / lib.key_size[self.key],
            self.log_candidates, n, self.num_elements, int(lib.crystals.space_group[self.idx[j]]),
            float(template == self.composition), len(known),
            float(same), match_known and self.known_structure(j, _mapping(men_groups, j), known),
        )  # fmt: skip
        return np.asarray(values, dtype=float)


def prototype_ids(signatures: Sequence[tuple[int, tuple]]) -> np.ndarray:
    """(C,) prototype id of each (space group, anonymous Wyckoff signature), in first-seen order."""
    ids: dict[tuple, int] = {}
    return np.array([ids.setdefault(s, len(ids)) for s in signatures], dtype=np.int64)


def substitution_scores(
    prototypes: np.ndarray, site_elements: Sequence[dict[str, int]], smoothing: float = 0.1
) -> np.ndarray:
    """(MAX_Z + 1, MAX_Z + 1) pointwise mutual information of two elements occupying the same
    Wyckoff signature in crystals of the same prototype.

    site_elements[i] maps each per-element Wyckoff signature of crystal i to its element. Each
    (prototype, signature) contributes its element histogram h as (h h^T - diag h) / sum(h), so
    large prototypes do not swamp the counts. Same-element scores are set above every other.
    """
    hist: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    for proto, sites in zip(prototypes.tolist(), site_elements, strict=True):
        for signature, z in sites.items():
            hist[(proto, signature)][z] += 1
    counts = np.zeros((MAX_Z + 1, MAX_Z + 1))
    for h in hist.values():
        if sum(h.values()) < 2:
            continue
        z = np.array(list(h.keys()))
        v = np.array(list(h.values()), dtype=float)
        pair = np.outer(v, v)
        np.fill_diagonal(pair, 0.0)
        counts[np.ix_(z, z)] += pair / v.sum()
    rows = counts.sum(1)
    scores = np.log((counts + smoothing) * rows.sum() / (np.outer(rows, rows) + 1e-9) + 1e-12)
    scores = np.clip(scores, -5.0, None)
    np.fill_diagonal(scores, scores.max() + 1.0)
    return scores
