"""loop_svc: the active-learning loop (sample -> score -> select -> ingest -> fine-tune ->
evaluate -> merge if better).

Public surface so far: candidate selection (`select_candidates`, `SelectionCriteria`,
`CandidateScore`, `Selection`).
"""

from loop_svc._select import CandidateScore, Selection, SelectionCriteria, select_candidates

__all__ = ["CandidateScore", "Selection", "SelectionCriteria", "select_candidates"]
