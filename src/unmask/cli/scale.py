"""The Ray flags `unmask batch` and `unmask serve` share, and `unmask serve --ray` itself."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .common import CliError

RayFlag = Annotated[bool, typer.Option("--ray", help="Run on Ray (needs the ray extra, docs/scale.md).")]
RayAddress = Annotated[
    Optional[str],
    typer.Option(
        "--ray-address",
        help="Ray cluster to join, e.g. 10.0.0.5:6379 or ray://head:10001 (implies --ray; default: RAY_ADDRESS, "
        "a cluster started on this machine, else a new local one).",
    ),
]
Replicas = Annotated[int, typer.Option("--replicas", min=1, help="--ray: model replicas (actors), each one engine.")]
NumCpus = Annotated[float, typer.Option("--num-cpus", min=0, help="--ray: CPUs per replica.")]
NumGpus = Annotated[float, typer.Option("--num-gpus", min=0, help="--ray: GPUs per replica.")]


def need_ray() -> None:
    """A one-line error naming the extra when Ray is not installed."""
    from rich.markup import escape

    from ..scale import RayMissing, require_ray

    try:
        require_ray()
    except RayMissing as err:
        raise CliError(escape(str(err))) from None  # `fail` prints markup: keep "[ray]" as written


def replica_threads(threads: str, num_cpus: float) -> int:
    """torch threads in a replica: its CPUs (at least one), or the --threads count."""
    if threads.strip().lower() != "auto":
        try:
            return max(1, int(threads))
        except ValueError:
            raise CliError(f"--threads: expected auto or a number of threads, got {threads!r}") from None
    return max(1, int(num_cpus))


def serve_with_ray(
    settings,
    address: str | None,
    replicas: int,
    min_replicas: int | None,
    max_replicas: int | None,
    target_ongoing: float,
    num_cpus: float,
    num_gpus: float,
    threads: str,
) -> None:
    """`unmask serve --ray`: the same app on Ray Serve until Ctrl-C."""
    need_ray()
    from ..scale.ray_serve import deployment_options, serve_on_ray

    options = deployment_options(
        replicas, min_replicas, max_replicas, target_ongoing, num_cpus, num_gpus, settings.max_queue
    )
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    count = options.get("num_replicas") or "{min_replicas}-{max_replicas}".format(**options["autoscaling_config"])

    def ready() -> None:
        typer.echo(f"unmask serving on Ray at http://{shown}:{settings.port} ({count} replicas; studio: /, API: /v1)")

    serve_on_ray(settings, address, options, replica_threads(threads, num_cpus), on_ready=ready)
