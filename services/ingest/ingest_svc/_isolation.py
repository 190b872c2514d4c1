"""How a parser process is started: an empty environment, a scratch directory, no network.

The parser reads untrusted text, so it gets nothing it does not need to parse:

- environment: only `sandbox_env` (no object-store, lakeFS or service settings: none of the
  service's variables is passed on); HOME and TMPDIR are its scratch directory, also its cwd;
- network and processes: an audit hook, set before anything is imported, refuses every
  `REFUSED_EVENTS` event (sockets, name lookups, new processes, which would run without it), so
  Python code cannot reach the network; where the system lets an unprivileged process create a
  user and network namespace (`network_namespace_available`), the process also runs in one with
  no interface up, which stops C code too;
- memory: RLIMIT_AS, and no core files.

The scratch directory is removed by the parent when the worker ends (`_sandbox._Worker.kill`),
and by the worker itself when its input closes (the parent may have died, e.g. SIGKILLed).
"""

import functools
import logging
import os
import shutil
import subprocess
import sys
from typing import Final

log = logging.getLogger("ingest_svc.sandbox")

WORKER_MODULE: Final = "ingest_svc._worker"
REFUSED_EVENTS: Final = (
    "socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
    "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
    "subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork",
    "os.forkpty",
)  # fmt: skip
_PATH: Final = "/usr/local/bin:/usr/bin:/bin"
_LOCALE: Final = ("LANG", "LC_ALL", "LC_CTYPE")
_UNSHARE: Final = [shutil.which("unshare") or "unshare", "--user", "--net", "--"]

# argv: memory limit, refused events (comma-separated), module to run, scratch directory. The
# limits and the hook are set before anything is imported or read (a preexec_fn would run Python
# between fork and exec in a threaded server, which is not safe).
_BOOTSTRAP: Final = """
import resource, runpy, shutil, sys
limit, refused = int(sys.argv[1]), frozenset(sys.argv[2].split(","))
module, scratch = sys.argv[3:5]
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
def refuse(event, args):
    if event in refused:
        raise PermissionError(f"the parser sandbox refuses {event}")
sys.addaudithook(refuse)
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
finally:
    shutil.rmtree(scratch, ignore_errors=True)
"""


def sandbox_env(scratch: str) -> dict[str, str]:
    """The parser's whole environment: a fixed PATH, the parent's locale, the import path, one
    BLAS thread, and `scratch` as HOME and TMPDIR."""
    env = {name: os.environ[name] for name in _LOCALE if name in os.environ}
    env.update(
        PATH=_PATH,
        HOME=scratch,
        TMPDIR=scratch,
        PYTHONPATH=os.pathsep.join(os.path.abspath(p) for p in sys.path if p),
        PYTHONNOUSERSITE="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONSAFEPATH="1",  # the scratch directory (cwd) is never on the import path
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return env


def sandbox_command(memory_bytes: int, scratch: str, module: str = WORKER_MODULE) -> list[str]:
    """The command running `module` as `__main__` in the sandbox (see the module notes)."""
    python = [sys.executable, "-c", _BOOTSTRAP, str(memory_bytes), ",".join(REFUSED_EVENTS)]
    prefix = _UNSHARE if network_namespace_available() else []
    return [*prefix, *python, module, scratch]


@functools.cache
def network_namespace_available() -> bool:
    """Whether `unshare --user --net` works here without privileges (checked once)."""
    try:
        done = subprocess.run([*_UNSHARE, "true"], env={}, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        done = None
    available = done is not None and done.returncode == 0
    log.info("parser sandbox network namespace: %s", "yes" if available else "unavailable")
    return available
