"""The worker pool: results in order, and no busy worker outlives a parent killed with SIGKILL
(it would keep its CPU and, for CHGNet, 2 GB until its task ended)."""

import os
import signal
import subprocess
import sys
import textwrap

import psutil

from autoperi_eval import Pool

PARENT = textwrap.dedent(
    """
    import threading, time
    from autoperi_eval import Pool

    pool = Pool(2, inline_below=0)
    pool.map(time.sleep, [0.01, 0.01])  # the workers are up
    threading.Thread(target=pool.map, args=(time.sleep, [60, 60]), daemon=True).start()
    time.sleep(1.0)  # and busy for a minute
    print("ready", flush=True)
    time.sleep(120)
    """
)


def test_map_keeps_the_order_of_the_items():
    with Pool(2, inline_below=0) as pool:
        assert pool.map(abs, list(range(-20, 0))) == list(range(20, 0, -1))


def test_workers_exit_when_their_parent_is_killed():
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        assert parent.stdout.readline().strip() == "ready"
        workers = [
            child
            for child in psutil.Process(parent.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        assert len(workers) == 2
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, [w.pid for w in alive]
    finally:
        if parent.poll() is None:
            parent.kill()
