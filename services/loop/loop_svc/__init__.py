"""loop_svc: the active-learning loop (sample -> score -> select -> ingest -> fine-tune ->
evaluate -> merge if better), resumable from its journal.

    clients = build_clients(spec, Addresses(), "autoperi-data", cache)   # the local stack
    journal = run_loop(spec, clients, Path("autoperi-data/loops"), "my-loop", Path("reports/x"))

Tests build `LoopClients` against in-process servers instead. `autoperi loop` is the CLI.
Exports load lazily, so `loop_svc.cli` stays cheap to import.
"""

from svc_kit import lazy_exports

__all__ = [
    "STAGES",
    "Addresses",
    "CandidateScore",
    "Candidates",
    "CspEvaluator",
    "Evaluation",
    "FineTune",
    "GrpcSampler",
    "GrpcScorer",
    "IngestClient",
    "Journal",
    "JournalError",
    "LocalSampler",
    "LoopClients",
    "LoopEngine",
    "LoopFailed",
    "LoopSpec",
    "Selection",
    "SelectionCriteria",
    "TrainerClient",
    "build_clients",
    "held_out_crystals",
    "loop_to_proto",
    "portable_path",
    "round_branch",
    "round_to_proto",
    "run_loop",
    "score_row",
    "seed_dataset",
    "select_candidates",
    "write_report",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Candidates": "._candidates",
        "loop_to_proto": "._convert",
        "round_to_proto": "._convert",
        "GrpcSampler": "._clients",
        "GrpcScorer": "._clients",
        "IngestClient": "._clients",
        "LoopClients": "._clients",
        "TrainerClient": "._clients",
        "LoopEngine": "._engine",
        "LoopFailed": "._engine",
        "round_branch": "._engine",
        "CspEvaluator": "._evaluate",
        "LocalSampler": "._evaluate",
        "held_out_crystals": "._evaluate",
        "STAGES": "._journal",
        "Journal": "._journal",
        "JournalError": "._journal",
        "write_report": "._report",
        "Addresses": "._run",
        "build_clients": "._run",
        "run_loop": "._run",
        "score_row": "._rounds",
        "seed_dataset": "._run",
        "CandidateScore": "._select",
        "Selection": "._select",
        "SelectionCriteria": "._select",
        "select_candidates": "._select",
        "Evaluation": "._spec",
        "portable_path": "._spec",
        "FineTune": "._spec",
        "LoopSpec": "._spec",
    },
)
