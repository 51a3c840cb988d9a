"""`unmask studio [MODEL]`: the studio in your browser.

If an unmask server already answers on the port, the studio is opened there; otherwise this
process starts one (the same as `unmask serve`) and opens the browser once it is listening.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import webbrowser
from typing import Optional

import typer

from . import app
from .common import Threads, bind_socket, fail, guard, set_threads

PROBE_SECONDS = 1.5  # how long to wait for an answer from a server that may already be there
START_SECONDS = 60.0  # how long to wait for our own server before giving up on the browser


def studio_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # bound everywhere: this machine reaches it on loopback
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def probe(url: str) -> str:
    """'unmask' if an unmask server answers at url, 'other' if something else does, '' if nothing."""
    try:
        with urllib.request.urlopen(url + "health", timeout=PROBE_SECONDS) as response:
            body = json.loads(response.read(4096) or b"{}")
    except urllib.error.HTTPError:
        return "other"
    except urllib.error.URLError as err:
        return "" if isinstance(err.reason, ConnectionRefusedError) else "other"
    except (OSError, ValueError):  # it accepted the connection but answered no HTTP (or no JSON)
        return "other"
    return "unmask" if isinstance(body, dict) and "status" in body and "in_flight" in body else "other"


def open_when_ready(server, url: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not server.started:
        if time.monotonic() > deadline or server.should_exit:
            return
        time.sleep(0.05)
    webbrowser.open(url)


@app.command()
def studio(
    model: Optional[str] = typer.Argument(
        None, help="Default model when a server is started (embedded name, folder or hub id). Default: story."
    ),
    host: Optional[str] = typer.Option(
        None, "--host", help="Interface (env UNMASK_HOST; default 127.0.0.1, this machine only)."
    ),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="Port (env UNMASK_PORT; default 8471)."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", help="Require 'Authorization: Bearer KEY' (the studio asks for it)."
    ),
    no_browser: bool = typer.Option(False, "--no-browser", help="Print the address instead of opening a browser."),
    threads: Threads = "auto",
) -> None:
    """Open the studio: watch text diffuse, compare step counts, infill, rewrite, solve Sudoku, chat.

    Reuses the unmask server already running on the port, or starts one here (Ctrl+C stops it).
    """
    from ..server.settings import Settings

    try:
        settings = Settings.from_env(model=model, host=host, port=port, api_key=api_key)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    url = studio_url(settings.host, settings.port)
    found = probe(url)
    if found == "other":
        fail(f"port {settings.port} is taken by another program; choose a free one with --port")
    if found == "unmask":
        typer.echo(f"unmask studio: {url} (the unmask server already running on port {settings.port})")
        if model:
            typer.echo(
                f"note: that server decides which models it serves; {model!r} is used only when the studio starts one",
                err=True,
            )
        if not no_browser:
            webbrowser.open(url)
        return

    from ..server import create_app
    from ..server.runner import make_server

    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        typer.echo(f"warning: {settings.host} is reachable from other machines and no --api-key is set", err=True)
    sock = guard(lambda: bind_socket(settings.host, settings.port))
    guard(lambda: set_threads(threads))
    server = make_server(create_app(settings), settings.host, settings.port)
    typer.echo(f"unmask studio: {url} (serving {settings.model}; Ctrl+C stops it)")
    if not no_browser:
        threading.Thread(target=open_when_ready, args=(server, url), daemon=True).start()
    server.run(sockets=[sock])
