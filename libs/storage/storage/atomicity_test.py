"""Atomicity and concurrency of the embedded version store, on the local and S3 object stores.

Kill test: a writer process commits batches of keys in a loop and is SIGKILLed after a random
delay; afterwards the branch head must be a complete commit (every object it references exists
and hashes right) holding only whole batches. Concurrency test: several writers commit distinct
keys to one branch with compare-and-swap retries; no key may be lost.
"""

import hashlib
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import storage
from storage import LocalObjectStore, LocalVersionStore, ObjectStore
from storage.conftest import MOTO_CREDENTIALS, connect_s3, s3_uri, verify_closure

_WRITER = """
import hashlib, sys
from storage import open_version_store
uri, repo, branch, trial, keys = sys.argv[1:6]
store = open_version_store(uri)
print("ready", flush=True)
for batch in range(100000):
    adds = {f"b{batch:04d}/k{j:04d}": hashlib.sha256(f"{trial}/{batch}/{j}".encode()).digest() * 8
            for j in range(int(keys))}
    store.commit(repo, branch, adds, message=f"batch {batch}")
    print("committed", flush=True)
"""

_CAS_WORKER = """
import random, sys, time
from storage import HeadMoved, open_version_store
uri, repo, branch, worker, commits, start = sys.argv[1:7]
store = open_version_store(uri)
time.sleep(max(0.0, float(start) - time.time()))
retries = 0
for i in range(int(commits)):
    adds = {f"w{worker}/c{i}/k{j}": f"{worker}/{i}/{j}".encode() for j in range(4)}
    while True:
        head = store.head(repo, branch)
        time.sleep(random.uniform(0, 0.01))  # widen the race window
        try:
            store.commit(repo, branch, adds, message=f"{worker}/{i}", expected_head=head)
            break
        except HeadMoved:
            retries += 1
print(retries, flush=True)
"""


def _payload_sha(trial: int, batch: int, j: int) -> str:
    return hashlib.sha256(hashlib.sha256(f"{trial}/{batch}/{j}".encode()).digest() * 8).hexdigest()


def _child_env(extra: dict | None = None) -> dict:
    root = str(Path(storage.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **(extra or {}), "PYTHONPATH": path}


def _kill_trial(uri, objects, repo, root_id, trial, keys, timing, env, rng) -> str:
    """Run one writer, let it finish 0-2 commits, kill it at a random point of the next one,
    check the branch; return 'phase@complete batches' of the kill."""
    branch = f"trial{trial}"
    LocalVersionStore(objects).create_branch(repo, branch, root_id)
    args = [sys.executable, "-c", _WRITER, uri, repo, branch, str(trial), str(keys)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=env)
    assert proc.stdout.readline() == b"ready\n"
    for _ in range(rng.randrange(3)):
        started = time.monotonic()
        assert proc.stdout.readline() == b"committed\n"
        timing.append(time.monotonic() - started)
    time.sleep(rng.uniform(0.0, 1.2 * max(timing[-3:])))
    proc.kill()
    proc.wait()
    proc.stdout.close()

    store = LocalVersionStore(objects)  # fresh: no cache from the writer's point of view
    head = store.head(repo, branch)
    log = store.log(repo, branch)
    assert log[-1].id == root_id and [len(c.parents) for c in log[:-1]] == [1] * (len(log) - 1)
    entries = verify_closure(objects, "versions", repo, head)
    done = len(log) - 1  # complete batches
    per_batch = Counter(key.split("/")[0] for key in entries)
    assert per_batch == {f"b{b:04d}": keys for b in range(done)}, "a partial batch is visible"
    for key, (sha, _) in entries.items():
        batch, j = int(key[1:5]), int(key.split("/k")[1])
        assert sha == _payload_sha(trial, batch, j)
    written = sum(objects.has_blob(_payload_sha(trial, done, j)) for j in range(keys))
    phase = "between" if written == 0 else "blobs" if written < keys else "before-head"
    return f"{phase}@{done}"


def _run_kill_trials(uri, objects, trials, keys, env) -> Counter:
    store = LocalVersionStore(objects)
    root = store.create_repository("crash")
    rng, timing = random.Random(7), [0.3]  # seconds per commit, measured as the trials go
    phases = Counter(
        _kill_trial(uri, objects, "crash", root.id, t, keys, timing, env, rng)
        for t in range(trials)
    )
    inside = sum(n for p, n in phases.items() if not p.startswith("between"))
    assert inside > 0, f"no kill landed inside a commit: {phases}"
    assert any(not p.endswith("@0") for p in phases), f"no kill after a completed commit: {phases}"
    return phases


@pytest.fixture
def scratch(tmp_path) -> Iterator[Path]:
    """A directory removed at the end of the test (the kill tests leave thousands of files)."""
    path = tmp_path / "store"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_killed_writer_leaves_a_complete_commit_local(scratch):
    """fsync only adds power-loss durability; process-kill atomicity is the same without it."""
    objects = LocalObjectStore(scratch, durable=False)
    phases = _run_kill_trials(f"file://{scratch}?durable=false", objects, 50, 100, _child_env())
    print(f"kill phases over 50 trials: {dict(phases)}")


@pytest.mark.slow
def test_killed_durable_writer_leaves_a_complete_commit_local(scratch):
    objects = LocalObjectStore(scratch)
    _run_kill_trials(f"file://{scratch}", objects, 50, 100, _child_env())


def test_killed_writer_leaves_a_complete_commit_s3(moto_endpoint):
    prefix = f"crash-{time.time_ns()}"
    env = _child_env(MOTO_CREDENTIALS)
    phases = _run_kill_trials(
        s3_uri(moto_endpoint, prefix), connect_s3(moto_endpoint, prefix), 8, 40, env
    )
    print(f"kill phases over 8 S3 trials: {dict(phases)}")


@pytest.mark.slow
def test_killed_writer_leaves_a_complete_commit_s3_50_trials(moto_endpoint):
    prefix = f"crash-{time.time_ns()}"
    env = _child_env(MOTO_CREDENTIALS)
    _run_kill_trials(s3_uri(moto_endpoint, prefix), connect_s3(moto_endpoint, prefix), 50, 40, env)


def test_concurrent_processes_with_compare_and_swap_lose_nothing(tmp_path):
    workers, commits = 4, 8
    store = LocalVersionStore(LocalObjectStore(tmp_path))
    store.create_repository("data")
    start = time.time() + 1.0
    uri = f"file://{tmp_path}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CAS_WORKER,
                uri,
                "data",
                "main",
                str(w),
                str(commits),
                str(start),
            ],
            stdout=subprocess.PIPE,
            env=_child_env(),
        )
        for w in range(workers)
    ]
    retries = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    _assert_all_present(LocalVersionStore(store.objects), workers, commits)
    assert sum(retries) > 0, "the writers never collided: the test did not exercise the swap"


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_concurrent_threads_with_automatic_retry_lose_nothing(backend, tmp_path, request):
    objects: ObjectStore = (
        LocalObjectStore(tmp_path)
        if backend == "local"
        else request.getfixturevalue("object_store_s3")
    )
    LocalVersionStore(objects).create_repository("data")
    workers, commits = 4, 5

    def work(worker: int) -> None:
        store = LocalVersionStore(objects)  # one store per writer, like separate processes
        for i in range(commits):
            adds = {f"w{worker}/c{i}/k{j}": f"{worker}/{i}/{j}".encode() for j in range(4)}
            store.commit("data", "main", adds, message=f"{worker}/{i}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _assert_all_present(LocalVersionStore(objects), workers, commits)


def _assert_all_present(store: LocalVersionStore, workers: int, commits: int) -> None:
    tree = store.tree("data", "main")
    expected = {
        f"w{w}/c{i}/k{j}": hashlib.sha256(f"{w}/{i}/{j}".encode()).hexdigest()
        for w in range(workers)
        for i in range(commits)
        for j in range(4)
    }
    assert {k: e.sha256 for k, e in tree.items()} == expected
    assert len(store.log("data", "main")) == workers * commits + 1
