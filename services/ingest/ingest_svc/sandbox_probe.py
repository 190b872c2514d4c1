"""Test-only: run in the parser sandbox in place of `ingest_svc._worker`, it reports what code
running there can see and do (`sandbox_test` starts it through `_sandbox._Worker`).

It speaks the worker's protocol: a ready frame, then for each request {"port": P} the reply
{"environ": os.environ, "cwd", "tmp": the temporary directory, "python_connect" and
"c_connect": the outcome of connecting to 127.0.0.1:P from Python and through libc's
`socket`/`connect` (which no audit hook sees), "spawn": the outcome of starting a process}.
An outcome is "connected" / "spawned" or the error's text.
"""

import ctypes
import os
import socket
import struct
import subprocess
import sys
import tempfile

from ingest_svc._worker import read_frame, write_frame


def python_connect(port: int) -> str:
    """Connect to 127.0.0.1:`port` with the socket module."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(("127.0.0.1", port))
            return "connected"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def c_connect(port: int) -> str:
    """Connect to 127.0.0.1:`port` through libc, below Python's audit hooks."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    if fd < 0:
        return f"socket: {os.strerror(ctypes.get_errno())}"
    address = struct.pack("=H", socket.AF_INET) + struct.pack(">H", port)
    address += socket.inet_aton("127.0.0.1") + bytes(8)  # struct sockaddr_in
    try:
        if libc.connect(fd, address, len(address)) == 0:
            return "connected"
        return f"connect: {os.strerror(ctypes.get_errno())}"
    finally:
        os.close(fd)


def spawn() -> str:
    """Start a process."""
    try:
        subprocess.run(["true"], check=True)
        return "spawned"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def report(port: int) -> dict:
    """What the sandbox lets this process see and do (see the module notes)."""
    return {
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "tmp": tempfile.gettempdir(),
        "python_connect": python_connect(port),
        "c_connect": c_connect(port),
        "spawn": spawn(),
    }


def main() -> None:
    """Answer probe requests until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    write_frame(stdout, {"ready": True})
    while (request := read_frame(stdin)) is not None:
        write_frame(stdout, report(request["port"]))


if __name__ == "__main__":
    main()
