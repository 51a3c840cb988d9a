"""`unmask ps` and `unmask stop`: what a running server has loaded, and unloading it (as Ollama's)."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from typing import Optional

import typer

from . import app
from .common import CliError, guard

Host = typer.Option(None, "--host", help="The server's host (env UNMASK_HOST; default 127.0.0.1).")
Port = typer.Option(None, "--port", min=1, max=65535, help="The server's port (env UNMASK_PORT; default 8471).")
TIMEOUT = 10.0


def call(host: Optional[str], port: Optional[int], path: str, body: dict | None = None) -> dict:
    """One JSON request to the running server (its API key from UNMASK_API_KEY)."""
    from ..server.settings import Settings

    settings = Settings.from_env(host=host, port=port)
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{shown}:{settings.port}{path}"
    headers = {"Content-Type": "application/json"}
    if settings.api_key:
        headers["Authorization"] = f"Bearer {settings.api_key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        try:
            message = json.loads(err.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {err.code}"
        raise CliError(message) from None
    except (urllib.error.URLError, OSError):
        raise CliError(
            f"no unmask server answers at http://{shown}:{settings.port}; start one with `unmask serve`"
        ) from None


def until(expires_at: str) -> str:
    left = (dt.datetime.fromisoformat(expires_at) - dt.datetime.now(dt.timezone.utc)).total_seconds()
    return "now" if left < 1 else f"{left / 60:.0f} minutes from now" if left >= 90 else f"{left:.0f} seconds from now"


@app.command()
def ps(
    host: Optional[str] = Host,
    port: Optional[int] = Port,
    as_json: bool = typer.Option(False, "--json", help="Print the server's JSON."),
) -> None:
    """The models a running `unmask serve` has loaded, their size, and when they unload."""

    def go() -> None:
        from rich.console import Console
        from rich.table import Table

        from .hub import human_size

        models = call(host, port, "/api/ps")["models"]
        if as_json:
            typer.echo(json.dumps(models, indent=2))
            return
        table = Table(box=None, pad_edge=False)
        for column in ("NAME", "SIZE", "PROCESSOR", "UNTIL"):
            table.add_column(column)
        for m in models:
            processor = "GPU" if m["size_vram"] else "CPU"
            table.add_row(m["name"], human_size(m["size"]), processor, until(m["expires_at"]))
        Console().print(table)

    guard(go)


@app.command()
def stop(
    model: str = typer.Argument(..., help="A model the server has loaded (see `unmask ps`)."),
    host: Optional[str] = Host,
    port: Optional[int] = Port,
) -> None:
    """Unload a model from a running `unmask serve` (once its running requests finish)."""
    guard(lambda: (call(host, port, "/api/stop", {"model": model}), typer.echo(f"stopped {model}")))
