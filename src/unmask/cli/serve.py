"""`unmask serve`: the OpenAI-compatible and native API (and the studio) on one local port."""

from __future__ import annotations

from typing import Optional

import typer

from . import app
from .common import Threads, bind_socket, guard, set_threads
from .scale import NumCpus, NumGpus, RayAddress, RayFlag, Replicas, serve_with_ray


@app.command()
def serve(
    model: Optional[str] = typer.Argument(
        None, help="Default model (embedded name, folder or hub id). Default: story."
    ),
    host: Optional[str] = typer.Option(
        None, "--host", help="Interface to bind (env UNMASK_HOST; default 127.0.0.1, this machine only)."
    ),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="Port (env UNMASK_PORT; default 8471)."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", help="Require 'Authorization: Bearer KEY' (env UNMASK_API_KEY)."
    ),
    allow_origin: Optional[list[str]] = typer.Option(
        None,
        "--allow-origin",
        help="A web origin allowed to call the API, e.g. http://localhost:3000; repeatable "
        "(env UNMASK_ORIGINS, comma-separated).",
    ),
    keep_alive: Optional[float] = typer.Option(
        None, "--keep-alive", min=0, help="Seconds an idle model stays loaded (default 300)."
    ),
    max_queue: Optional[int] = typer.Option(
        None, "--max-queue", min=1, help="Requests queued or running before 429 (default 64)."
    ),
    max_batch: Optional[int] = typer.Option(
        None, "--max-batch", min=1, help="Requests denoised together in one pass (default 16)."
    ),
    threads: Threads = "auto",
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16 or float16."),
    quantize: Optional[str] = typer.Option(
        None, "--quantize", help="int8 or int4: quantize every served model's weights as it loads (less memory)."
    ),
    ray: RayFlag = False,
    ray_address: RayAddress = None,
    replicas: Replicas = 1,
    min_replicas: Optional[int] = typer.Option(None, "--min-replicas", min=0, help="--ray: autoscale from N replicas."),
    max_replicas: Optional[int] = typer.Option(None, "--max-replicas", min=1, help="--ray: autoscale up to N."),
    target_ongoing: float = typer.Option(
        2.0, "--target-ongoing", min=0.1, help="--ray autoscaling: requests per replica to aim at."
    ),
    num_cpus: NumCpus = 1,
    num_gpus: NumGpus = 0,
) -> None:
    """Serve models over HTTP: /v1 (OpenAI-compatible), /api/diffuse (per-step stream), studio at /.

    Served models: the default, plus UNMASK_MODELS (comma-separated) when set, otherwise
    the embedded and downloaded models.
    """
    from ..server import create_app
    from ..server.catalog import split_entry
    from ..server.runner import make_server
    from ..server.settings import Settings

    if quantize not in (None, "int8", "int4"):
        raise typer.BadParameter(f"expected int8 or int4, got {quantize!r}", param_hint="--quantize")
    try:
        settings = Settings.from_env(
            model=model,
            host=host,
            port=port,
            api_key=api_key,
            allow_origins=allow_origin,
            keep_alive=keep_alive,
            max_queue=max_queue,
            max_batch=max_batch,
            quantize=quantize,
            dtype=dtype,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    if ray or ray_address is not None:  # the same app on Ray Serve (docs/scale.md)
        ray_options = (replicas, min_replicas, max_replicas, target_ongoing, num_cpus, num_gpus, threads)
        return guard(lambda: serve_with_ray(settings, ray_address, *ray_options))
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    name = split_entry(settings.model)[0]
    # Bound before saying "serving": a taken port is one line, not uvicorn's traceback.
    sock = guard(lambda: bind_socket(settings.host, settings.port))
    guard(lambda: set_threads(threads))
    typer.echo(f"unmask serving {name} at http://{shown}:{settings.port} (studio: /, API: /v1)")
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        typer.echo(f"warning: {settings.host} is reachable from other machines and no --api-key is set", err=True)
    make_server(create_app(settings), settings.host, settings.port).run(sockets=[sock])
