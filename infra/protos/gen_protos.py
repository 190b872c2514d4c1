"""Generate the Python protobuf and gRPC modules of every .proto under protos/.

Usage, from the repository root (what `make protos` runs):

    .venv/bin/python infra/protos/gen_protos.py [--protos DIR] [--out DIR]

For `protos/autoperi/<pkg>/v1/<name>.proto` it writes `<out>/autoperi/<pkg>/v1/<name>_pb2.py`,
`<name>_pb2.pyi` and `<name>_pb2_grpc.py` (grpc_tools.protoc with python_out, pyi_out and
grpc_python_out), so `from autoperi.sampler.v1 import sampler_pb2, sampler_pb2_grpc` works with
`<out>` on sys.path. Every generated package directory gets an empty `__init__.py` except the
top-level `autoperi/`, which stays an implicit namespace package (other distributions may add
`autoperi.*` packages; the regular packages below it import fast and unambiguously, in a .pth
source root as in a Ray Serve proxy).

Contract: the output directory belongs to this script. Everything is generated into a temporary
directory beside it and swapped in only when protoc succeeds, so the run is idempotent, stale
modules of deleted protos disappear, and a proto error leaves the previous output untouched and
exits with status 1 and protoc's message.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

LOG = logging.getLogger("gen_protos")
REPO = Path(__file__).resolve().parents[2]
PACKAGE_RE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.MULTILINE)


class ProtoError(RuntimeError):
    """A proto file is invalid or protoc failed; the message says which and why."""


def find_protos(root: Path) -> list[Path]:
    """All .proto files under `root`, relative to it, sorted; raises ProtoError if none."""
    protos = sorted(p.relative_to(root) for p in root.rglob("*.proto"))
    if not protos:
        raise ProtoError(f"no .proto files under {root}")
    return protos


def check_package(root: Path, proto: Path) -> None:
    """Require `package a.b.v1;` in `a/b/v1/x.proto` (the import path equals the package)."""
    match = PACKAGE_RE.search((root / proto).read_text(encoding="utf-8"))
    expected = ".".join(proto.parent.parts)
    if match is None or match.group(1) != expected:
        found = f"package {match.group(1)}" if match else "no package"
        raise ProtoError(f"{proto} declares {found}, but its directory requires package {expected}")


def run_protoc(root: Path, protos: list[Path], out: Path) -> None:
    """Run grpc_tools.protoc on `protos` (relative to `root`) writing into `out`."""
    well_known = resources.files("grpc_tools") / "_proto"
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={root}",
        f"--proto_path={well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(str(p) for p in protos),
    ]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise ProtoError(f"protoc failed (exit {result.returncode}):\n{detail}")


def add_init_files(out: Path) -> None:
    """Write an empty __init__.py in every package directory below the top-level ones."""
    for directory in sorted(p for p in out.rglob("*") if p.is_dir()):
        if directory.parent != out:
            (directory / "__init__.py").touch()


def swap_in(generated: Path, out: Path) -> None:
    """Replace `out` by `generated` (same filesystem), removing the previous output."""
    previous = out.with_name(f".{out.name}.old")
    shutil.rmtree(previous, ignore_errors=True)
    if out.exists():
        out.rename(previous)
    generated.rename(out)
    shutil.rmtree(previous, ignore_errors=True)


def generate(protos_root: Path, out: Path) -> int:
    """Generate the code of every proto under `protos_root` into `out`; returns the proto count."""
    protos = find_protos(protos_root)
    for proto in protos:
        check_package(protos_root, proto)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the output is an ordinary build directory
    try:
        run_protoc(protos_root, protos, staging)
        add_init_files(staging)
        swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(protos)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protos", type=Path, default=REPO / "protos", help="proto root")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "gen" / "python")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        count = generate(args.protos.resolve(), args.out.resolve())
    except ProtoError as error:
        LOG.error("error: %s", error)
        return 1
    LOG.info("generated Python code of %d protos into %s", count, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
