"""`autoperi serve sampler` and `autoperi bench serve`.

Found by the `autoperi` application through the entry point in this service's pyproject.toml."""

from pathlib import Path
from typing import Annotated

import typer
from svc_kit.cli_options import StackContext, StackRole


def serve(
    checkpoint: Annotated[
        Path | None, typer.Option(help="Checkpoint directory (default checkpoints/perov_5_csp).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="gRPC port (50064): Serve's proxy, or the TLS relay.")
    ] = None,
    proxy_port: Annotated[
        int | None, typer.Option(help="With TLS on: Serve's plaintext proxy port (50164).")
    ] = None,
    http_port: Annotated[int | None, typer.Option(help="Serve's HTTP port (8064).")] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address to join (default: a local Ray).")
    ] = None,
) -> None:
    """Serve crystal generation (SamplerService) on Ray Serve's gRPC proxy until SIGINT/SIGTERM,
    behind a TLS relay when AUTOPERI_SAMPLER_TLS_CERT_FILE/_KEY_FILE are set; other settings
    come from AUTOPERI_SAMPLER_* variables."""
    from svc_kit import settings_from_options

    from sampler_svc._settings import SamplerSettings
    from sampler_svc.main import main

    given = {"checkpoint": checkpoint, "http_port": http_port, "proxy_port": proxy_port}
    given["ray_address"] = address
    main(settings_from_options(SamplerSettings, port=port, **given))


def bench_serve(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint directory.")] = Path(
        "checkpoints/perov_5_csp"
    ),
    steps: Annotated[int, typer.Option(help="Euler steps per sample.")] = 10,
    samples: Annotated[int, typer.Option(help="Samples per request.")] = 4,
    seconds: Annotated[float, typer.Option(help="Seconds per concurrency level.")] = 12.0,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("reports/bench"),
) -> None:
    """Crystals/s through gRPC at 8, 32, 64 clients vs the in-process Generator, latencies,
    and a 4x overload (RESOURCE_EXHAUSTED only); writes serve.json and serve.md."""
    from rich.console import Console

    from sampler_svc._bench import Plan
    from sampler_svc._bench import bench_serve as run

    plan = Plan(samples_per_request=samples, steps=steps, seconds_per_level=seconds)
    result = run(checkpoint, out, plan)
    Console().print_json(data=result)


BENCH = {"serve": bench_serve}


def _stack_args(ctx: StackContext) -> list[str]:
    return [
        "--checkpoint", str(ctx.checkpoint), "--address", ctx.ray_address,
        "--http-port", str(ctx.base_port + 1000), "--proxy-port", str(ctx.base_port + 1001),
    ]  # fmt: skip


def _ready(address: str) -> bool:
    """True once the Serve application answers GetSamplerInfo with a loaded checkpoint (asked
    with the environment's client security, as every stack probe)."""
    from sampler_svc.client import sampler_info

    info = sampler_info(address, timeout=5)
    return bool(info.checkpoint_id)


STACK = StackRole(order=3, args=_stack_args, ready=_ready)
