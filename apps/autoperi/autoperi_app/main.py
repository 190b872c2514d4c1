"""The `autoperi` command: one typer app with a sub-command per user task."""

import logging

import typer

from autoperi_app import bench, data, demo, explore, serve, stack, templates, train
from autoperi_app._errors import run_guarded

app = typer.Typer(
    name="autoperi",
    help="AutoPeri: generate, evaluate and serve crystal structures.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(bench.app, name="bench")
app.add_typer(serve.app, name="serve")
app.add_typer(templates.app, name="templates")
app.command("demo")(demo.demo)
app.command("explore")(explore.explore)
app.command("stack")(stack.stack)
app.command("train")(train.train)
bench.app.command("train")(train.bench_train)


def _mount_library_commands() -> None:
    """Commands whose implementation lives with its library (evaluation, model)."""
    from autoperi_eval.cli import app as eval_app
    from autoperi_model import cli as model_cli

    app.add_typer(eval_app)
    serve.mount_services(app, bench.app)
    app.command("sample")(model_cli.sample_cmd)
    app.command("relax-lattice")(model_cli.relax_lattice_cmd)
    app.command("eval-lattice")(model_cli.eval_lattice_cmd)
    bench.app.command("sample")(model_cli.bench_sample_cmd)


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _mount_library_commands()
    run_guarded(lambda: app(standalone_mode=True))


if __name__ == "__main__":
    main()
