"""Where the CLI finds the benchmark split files: the dataset contract, with its errors shown to
the user as such (exit code 2)."""

from pathlib import Path

from autoperi_app._errors import UserError


def split_file(spec: str) -> Path:
    """The CSV file of a split spec such as `perov_5:test` (UserError naming the problem)."""
    from autoperi_data import DatasetError, parse_split, split_path

    try:
        parsed = parse_split(spec)
        return split_path(parsed.dataset, parsed.split)
    except DatasetError as exc:
        raise UserError(str(exc)) from None
