"""The `autoperi` command: one typer app with a sub-command per user task."""

import logging

import typer

from autoperi_cli import bench, data, demo
from autoperi_cli._errors import run_guarded

app = typer.Typer(
    name="autoperi",
    help="AutoPeri: generate, evaluate and serve crystal structures.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(bench.app, name="bench")
app.command("demo")(demo.demo)


def _mount_eval() -> None:
    from autoperi_eval.cli import app as eval_app

    app.add_typer(eval_app)


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _mount_eval()
    run_guarded(lambda: app(standalone_mode=True))


if __name__ == "__main__":
    main()
