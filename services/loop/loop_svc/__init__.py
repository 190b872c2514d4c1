"""loop_svc: the active-learning loop (sample -> score -> select -> ingest -> fine-tune ->
evaluate -> merge if better), resumable from its journal, and LoopService (loop.v1), which runs
loops in background threads and resumes them after a restart.

    server = create_server(LoopSettings(), LoopDeps.from_settings(settings))   # the service
    clients = build_clients(spec, Addresses(), "autoperi-data", cache)   # or in one process
    journal = run_loop(spec, clients, Path("autoperi-data/loops"), "my-loop", Path("reports/x"))

Tests build `LoopClients` against in-process servers instead. `autoperi loop` is the CLI (a
client of the service, `loop_svc.client`), `autoperi serve loop` the service. Exports load
lazily, so `loop_svc.cli` stays cheap to import.
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
    "LoopCore",
    "LoopDeps",
    "LoopEngine",
    "LoopFailed",
    "LoopSettings",
    "LoopSpec",
    "LoopStopped",
    "Selection",
    "SelectionCriteria",
    "TrainerClient",
    "build_clients",
    "create_server",
    "held_out_crystals",
    "loop_to_proto",
    "request_to_spec",
    "round_branch",
    "round_to_proto",
    "run_loop",
    "score_row",
    "seed_dataset",
    "select_candidates",
    "spec_to_request",
    "store_checkpoint",
    "write_report",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Candidates": "._candidates",
        "loop_to_proto": "._convert",
        "round_to_proto": "._convert",
        "spec_to_request": "._convert",
        "request_to_spec": "._request",
        "LoopCore": "._loops",
        "LoopDeps": "._server",
        "create_server": "._server",
        "LoopSettings": "._settings",
        "store_checkpoint": "._run",
        "GrpcSampler": "._clients",
        "GrpcScorer": "._clients",
        "IngestClient": "._clients",
        "LoopClients": "._clients",
        "TrainerClient": "._clients",
        "LoopEngine": "._engine",
        "LoopFailed": "._engine",
        "LoopStopped": "._engine",
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
        "FineTune": "._spec",
        "LoopSpec": "._spec",
    },
)
