"""Put the project's source roots on the virtual environment's sys.path with a .pth file.

Usage: python infra/dev/write_pth.py ROOT [ROOT ...]   (paths relative to the repository root)
"""

import site
import sys
from pathlib import Path


def main(roots: list[str]) -> None:
    repo = Path(__file__).resolve().parents[2]
    target = Path(site.getsitepackages()[0]) / "autoperi_source_roots.pth"
    target.write_text("".join(f"{(repo / root).resolve()}\n" for root in roots))


if __name__ == "__main__":
    main(sys.argv[1:])
