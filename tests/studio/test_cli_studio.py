"""`unmask studio`: reuses a running server, or starts one, then points the browser at it."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from ..conftest import start_server_process

UNMASK = [os.path.join(os.path.dirname(sys.executable), "unmask")]  # the installed console script


def test_reuses_the_server_already_on_the_port(studio):
    done = subprocess.run(
        [*UNMASK, "studio", "--no-browser", "--port", str(studio.port)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"http://127.0.0.1:{studio.port}/" in done.stdout and "already running" in done.stdout


def test_starts_a_server_with_the_studio(studio_models):
    def launch(port: int) -> subprocess.Popen:
        return subprocess.Popen(
            [*UNMASK, "studio", studio_models["story"], "--no-browser", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def ready(port: int) -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            return True
        except httpx.HTTPError:
            return False

    proc, port = start_server_process(launch, ready)
    try:
        index = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert index.status_code == 200 and "unmask studio" in index.text
        assert "script-src 'self'" in index.headers["content-security-policy"]
        models = httpx.get(f"http://127.0.0.1:{port}/api/models", timeout=10).json()["models"]
        assert models[0]["default"] is True
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"unmask studio: http://127.0.0.1:{port}/" in out


def test_a_port_held_by_something_else_is_refused(studio):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        # Something listening that is not an HTTP unmask server.
        done = subprocess.run(
            [*UNMASK, "studio", "--no-browser", "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert done.returncode != 0 and "taken by another program" in done.stderr
