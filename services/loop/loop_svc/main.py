"""`main()`: the `autoperi loop` command as a program (`python -m loop_svc.main --help`)."""

import typer

from loop_svc.cli import loop


def main() -> None:
    """Run the loop command with the process's arguments."""
    typer.run(loop)


if __name__ == "__main__":
    main()
