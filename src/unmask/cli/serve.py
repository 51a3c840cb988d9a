"""`unmask serve`: the OpenAI-compatible and native API (and the studio) on one local port."""

from __future__ import annotations

from typing import Optional

import typer

from . import app


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
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="CPU threads for the model (default: all cores; 1 on a busy machine)."
    ),
) -> None:
    """Serve models over HTTP: /v1 (OpenAI-compatible), /api/generate (per-step stream), studio at /.

    Served models: the default, plus UNMASK_MODELS (comma-separated) when set, otherwise
    the embedded and downloaded models.
    """
    import torch
    import uvicorn

    from ..server import create_app
    from ..server.catalog import split_entry
    from ..server.limits import DRAIN_SECONDS
    from ..server.settings import Settings

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
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    name = split_entry(settings.model)[0]
    typer.echo(f"unmask serving {name} at http://{shown}:{settings.port} (studio: /, API: /v1)")
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        typer.echo(f"warning: {settings.host} is reachable from other machines and no --api-key is set", err=True)
    if threads:
        torch.set_num_threads(threads)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=int(DRAIN_SECONDS),
    )
    uvicorn.Server(config).run()
