"""`unmask serve` as a user runs it: a subprocess configured by environment variables, stopped
with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from unmask.server import Settings

from ..conftest import start_server_process


@pytest.mark.slow
def test_serve_from_the_environment_and_stop_on_sigterm(server_models):
    env = os.environ | {"UNMASK_API_KEY": "k", "UNMASK_MODELS": f"tiny={server_models['tiny']}"}
    command = [sys.executable, "-c", "from unmask.cli import main; main()", "serve", "tiny", "--max-batch", "4"]

    def launch(port: int) -> subprocess.Popen:
        return subprocess.Popen(
            command, env=env | {"UNMASK_PORT": str(port)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def ready(port: int) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    process, port = start_server_process(launch, ready)
    try:
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/v1/models").status_code == 401
        models = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer k"}).json()
        assert [m["id"] for m in models["data"]] == ["tiny"]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status reports it.
    assert process.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err
    assert out.splitlines()[0] == f"unmask serving tiny at http://127.0.0.1:{port} (studio: /, API: /v1)"


def test_settings_from_environment():
    env = {
        "UNMASK_HOST": "0.0.0.0",
        "UNMASK_PORT": "9000",
        "UNMASK_ORIGINS": "http://a.example, http://b.example",
        "UNMASK_MODELS": "story,tiny=/models/tiny",
    }
    settings = Settings.from_env(env, port=9100)
    assert (settings.host, settings.port) == ("0.0.0.0", 9100)  # flags win over the environment
    assert settings.allow_origins == ["http://a.example", "http://b.example"]
    assert settings.models == ["story", "tiny=/models/tiny"]
    assert Settings.from_env({}).port == 8471 and Settings.from_env({}).host == "127.0.0.1"
