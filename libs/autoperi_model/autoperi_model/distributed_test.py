"""Data-parallel `train` under torch.distributed (2 gloo processes): ranks stay in sync, rank 0
alone checkpoints, and a resumed 2-rank run equals an uninterrupted one."""

from __future__ import annotations

import pickle

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from autoperi_model._checkpoint import MODEL_FILE, sha256_file
from autoperi_model._train import train


def _worker(rank: int, config, data, root, jobs) -> None:
    dist.init_process_group("gloo", init_method=f"file://{root}/pg", rank=rank, world_size=2)
    try:
        for name, kwargs in jobs:
            seen: list = []
            log = [lambda s, m, seen=seen: seen.append(("log", s, m["loss"]))]
            ck = [lambda s, m, p, seen=seen: seen.append(("ck", s, p))]
            kwargs = {"callbacks": log, "checkpoint_callbacks": ck, **kwargs}
            model = train(config, data, root / name, **kwargs)
            state = {k: v.clone() for k, v in model.state_dict().items()}
            (root / f"{name}-{rank}.pkl").write_bytes(pickle.dumps((state, seen)))
            dist.barrier()  # rank 0's checkpoint is complete before anyone resumes from it
    finally:
        dist.destroy_process_group()


def _result(root, name, rank):
    return pickle.loads((root / f"{name}-{rank}.pkl").read_bytes())


def test_two_ranks_stay_in_sync_and_resume_exactly(tiny_config, tiny_data, tmp_path):
    config = tiny_config.updated(
        train={"max_steps": 6, "checkpoint_every_steps": 3, "log_every_steps": 3}
    )
    jobs = [
        ("straight", {}),
        ("resumed", {"stop_at": 3}),
        ("resumed", {"resume": True}),
    ]
    mp.spawn(_worker, args=(config, tiny_data, tmp_path, jobs), nprocs=2, join=True)
    (w0, seen0), (w1, seen1) = (_result(tmp_path, "straight", r) for r in (0, 1))
    for key, value in w0.items():
        assert torch.equal(value, w1[key]), key
    assert [e[:2] for e in seen0] == [("log", 3), ("ck", 3), ("log", 6), ("ck", 6)]
    assert [e[2] for e in seen0 if e[0] == "log"] == [e[2] for e in seen1 if e[0] == "log"]
    assert [e[2] for e in seen0 if e[0] == "ck"] == [tmp_path / "straight"] * 2
    assert [e[2] for e in seen1 if e[0] == "ck"] == [None, None]
    resumed, _ = _result(tmp_path, "resumed", 0)
    for key, value in w0.items():
        assert torch.equal(value, resumed[key]), key
    assert sha256_file(tmp_path / "straight" / MODEL_FILE) == sha256_file(
        tmp_path / "resumed" / MODEL_FILE
    )
