"""Real servers on loopback for the server tests, and the tiny checkpoints they serve.

- `server_models`: a tiny completion model (trained for a few steps, so it has a real
  tokenizer), the same weights with a Qwen2-style chat template, a tiny Sudoku grid model and
  the golden llada-tiny (no tokenizer: token-level only). Built once per session.
- `live`: one uvicorn server in a background thread, shared by the tests that do not need
  special settings; `start_server(...)` starts others (API key, small queue, slow model) and
  stops them at the end of the test. Limits are small so every generation takes milliseconds.
"""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest

import unmask
from unmask.server import Limits, Settings, create_app
from unmask.server.runner import make_server

from ..conftest import GOLDEN, loopback_socket, start_uvicorn, train_grid_model
from ..test_tokenizer import QWEN2_TEMPLATE

TEXT = "The fox ran to the river. The bear slept in the cave. A bird sang in the tree.\n" * 40
TEST_LIMITS = Limits(body_bytes=64 * 1024, max_tokens=16, steps=16, context=256, choices=4)


@pytest.fixture(scope="session")
def server_models(tmp_path_factory) -> dict[str, str]:
    from unmask.train import recipes
    from unmask.train.loop import Trainer

    work = tmp_path_factory.mktemp("server-models")
    data = work / "corpus.txt"
    data.write_text(TEXT)
    r = recipes.text_recipe(work / "run", [data], steps=4, batch_size=4, length=32, vocab=300, d_model=32, n_layers=2)
    tiny = Trainer(r.model_config, r.train, r.val, work / "run", r.config, r.export_files).run()

    chat = work / "chat"
    shutil.copytree(tiny, chat)
    config = json.loads((chat / "tokenizer_config.json").read_text())
    (chat / "tokenizer_config.json").write_text(json.dumps(config | {"chat_template": QWEN2_TEMPLATE}))

    return {
        "tiny": str(tiny),
        "chat": str(chat),
        "grid": str(train_grid_model(work / "grid")),
        "llada-tiny": str(GOLDEN / "llada-tiny"),
    }


class LiveServer:
    """uvicorn serving create_app(settings) in a background thread on a free loopback port (a
    socket bound here and handed to uvicorn, so the port cannot be taken in between)."""

    def __init__(self, settings: Settings):
        sock = loopback_socket()
        settings.host, settings.port = "127.0.0.1", sock.getsockname()[1]
        self.settings = settings
        self.app = create_app(settings)
        self.url = f"http://127.0.0.1:{settings.port}"
        server = make_server(self.app, settings.host, settings.port)
        self.server, self.thread = start_uvicorn(server, "test server", sock)

    @property
    def engine(self):
        return self.app.state.server.engine

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, **({"timeout": 60} | kwargs))

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def served(models: dict[str, str], default: str = "tiny") -> tuple[str, list[str]]:
    return f"{default}={models[default]}", [f"{k}={v}" for k, v in models.items() if k != default]


@pytest.fixture(scope="session")
def live(server_models):
    default, others = served(server_models)
    others.append("story")  # the embedded model, by name, as users address it
    server = LiveServer(Settings(model=default, models=others, limits=TEST_LIMITS, max_queue=32, max_batch=8))
    yield server
    server.stop()


@pytest.fixture
def start_server(server_models):
    """start_server(**settings) -> LiveServer serving the tiny models; stopped after the test."""
    started = []

    def start(**overrides) -> LiveServer:
        default, others = served(server_models)
        values = {"model": default, "models": others, "limits": TEST_LIMITS} | overrides
        server = LiveServer(Settings(**values))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class PassCounter:
    """A loader whose models sleep `delay` seconds per model pass and count their passes."""

    def __init__(self, delay: float):
        self.delay, self.passes = delay, 0

    def __call__(self, ref: str):
        model = unmask.load(ref)
        forward = model.net.forward

        def slow_forward(*args, **kwargs):
            time.sleep(self.delay)
            self.passes += 1
            return forward(*args, **kwargs)

        model.net.forward = slow_forward
        return model


def read_sse(lines) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body given as lines."""
    frames, event, data = [], None, []
    for line in lines:
        if line == "":
            if data:
                frames.append((event, "\n".join(data)))
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    if data:
        frames.append((event, "\n".join(data)))
    return frames
