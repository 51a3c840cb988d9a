"""Shared fixtures: the golden checkpoints and tiny models/tokenizers built on the fly."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import unmask

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(autouse=True, scope="session")
def own_unmask_home(tmp_path_factory):
    """Named models (`unmask create`) and caches in a folder of the test run, not ~/.unmask."""
    os.environ["UNMASK_HOME"] = str(tmp_path_factory.mktemp("unmask-home"))
    yield


@pytest.fixture(scope="session")
def dream_tiny():
    return unmask.load(GOLDEN / "dream-tiny", dtype="float32")  # the golden records are float32


@pytest.fixture(scope="session")
def llada_tiny():
    return unmask.load(GOLDEN / "llada-tiny", dtype="float32")  # the golden records are float32


def write_checkpoint(folder: Path, config: dict, seed: int = 0, dtype=torch.float32) -> Path:
    """A random-weight checkpoint folder for `config`, in the real file layout."""
    from unmask.models import architecture_for

    folder.mkdir(parents=True, exist_ok=True)
    arch = architecture_for(config)
    torch.manual_seed(seed)
    net = arch.make_model(arch.make_args(config))
    state = {k: v.detach().to(dtype).contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config))
    return folder


TINY_DREAM = {
    "model_type": "Dream",
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "rope_theta": 10000.0,
    "mask_token_id": 63,
    "eos_token_id": 1,
    "pad_token_id": 1,
    "bos_token_id": 1,
    "some_unknown_key": "ignored",
}

TINY_LLADA = {
    "model_type": "llada",
    "d_model": 32,
    "n_heads": 4,
    "n_kv_heads": 4,
    "n_layers": 2,
    "mlp_hidden_size": 64,
    "vocab_size": 64,
    "embedding_size": 64,
    "rope_theta": 10000.0,
    "mask_token_id": 63,
    "eos_token_id": 1,
    "pad_token_id": 1,
    "block_type": "llama",
}


TINY_TEXT = "The fox ran to the river. The bear slept in the cave. A bird sang in the tree.\n" * 40


@pytest.fixture(scope="session")
def tiny_text_model_dir(tmp_path_factory):
    """A real checkpoint folder with a tokenizer: a tiny LLaDA trained for a few steps."""
    from unmask.train import recipes
    from unmask.train.loop import Trainer

    work = tmp_path_factory.mktemp("tiny-text")
    data = work / "corpus.txt"
    data.write_text(TINY_TEXT)
    r = recipes.text_recipe(work / "run", [data], steps=4, batch_size=4, length=32, vocab=300, d_model=32, n_layers=2)
    return Trainer(r.model_config, r.train, r.val, work / "run", r.config, r.export_files).run()


@pytest.fixture(scope="session")
def tiny_grid_model_dir(tmp_path_factory):
    """A random-weight Sudoku (grid) checkpoint with the real Sudoku tokenizer."""
    from unmask.train import recipes
    from unmask.train.bpe import save_tokenizer

    folder = tmp_path_factory.mktemp("tiny-grid")
    config = recipes.llada_config(11, d_model=32, n_layers=2, n_heads=4, mlp=64, max_len=81)
    config |= {"model_type": "grid", "grid_size": 9, "box_size": 3}
    write_checkpoint(folder, config)
    save_tokenizer(recipes.sudoku_tokenizer(), folder)
    recipes.write_generation_config(folder, {"algorithm": "low_confidence"})
    return folder


def train_grid_model(work: Path) -> Path:
    """A tiny Sudoku model, trained just enough (10 steps) that it never proposes the mask token."""
    from unmask.tasks.sudoku import augment, random_solution
    from unmask.train import recipes
    from unmask.train.data import GridBatches
    from unmask.train.loop import TrainConfig, Trainer

    rng = random.Random(0)
    solutions = [random_solution(rng) for _ in range(8)]
    config = recipes.llada_config(11, d_model=32, n_layers=2, n_heads=4, mlp=64, max_len=81)
    config |= {"model_type": "grid", "architectures": ["GridModel"], "grid_size": 9, "box_size": 3}
    batches = GridBatches(solutions, augment, {str(d): d + 1 for d in range(1, 10)}, 8, 0)

    def export(folder):
        recipes.save_tokenizer(recipes.sudoku_tokenizer(), folder)
        recipes.write_generation_config(folder, {"algorithm": "low_confidence"})

    train = TrainConfig(steps=10, lr=1e-2, warmup=1, eval_every=1000, save_every=1000, eval_batches=1)
    return Trainer(config, batches, batches, work, train, export).run()


def loopback_socket() -> socket.socket:
    """A TCP socket bound to a free loopback port, for `start_uvicorn` to serve on.

    The port is held from the moment it is chosen until the server closes it, so no other
    process (another test run on this machine) can take it in between."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def start_uvicorn(server, what: str, sock: socket.socket):
    """Run a uvicorn.Server (or its config) on `sock` (see `loopback_socket`) in a daemon thread;
    returns (server, thread) once it listens. The server closes the socket when it stops."""
    import uvicorn

    if isinstance(server, uvicorn.Config):
        server = uvicorn.Server(server)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the {what} did not start")
        time.sleep(0.02)
    return server, thread


@contextlib.contextmanager
def reserved_port():
    """A free loopback port for a server that a subprocess binds by number (`unmask serve --port`).

    On Linux the port stays bound here, not listening, with SO_REUSEADDR until the block ends: the
    server's own bind still succeeds (asyncio sets SO_REUSEADDR too), while other processes are
    refused it and the kernel hands it to no one asking for port 0. Elsewhere it is released at
    once, and `start_server_process` retries on a fresh port if another process takes it first."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        if not sys.platform.startswith("linux"):
            sock.close()
        yield port
    finally:
        sock.close()


# What a server subprocess says when its port was taken before it could bind it: uvicorn's bind
# error, or `unmask studio` finding another program (or another unmask server) on it.
PORT_TAKEN = re.compile(r"address already in use|taken by another program|already running", re.IGNORECASE)


def start_server_process(launch, ready, attempts: int = 3, timeout: float = 60):
    """launch(port) -> Popen of a server on a reserved free port; returns (process, port) once
    ready(port) is true. If the process exits because the port was taken, it is launched again on
    another port; if it exits for any other reason, or is not ready in `timeout` s, the test fails
    with its output (so launch it with text pipes, or no pipes)."""
    for _ in range(attempts):
        with reserved_port() as port:
            process = launch(port)
            deadline = time.monotonic() + timeout
            while process.poll() is None and time.monotonic() < deadline:
                if ready(port):
                    return process, port
                time.sleep(0.2)
        late = process.poll() is None
        if late:
            process.kill()
        out, err = process.communicate(timeout=30)
        output = (out or "") + (err or "")
        if late or not PORT_TAKEN.search(output):
            why = f"was not ready in {timeout:g} s" if late else f"exited with status {process.returncode}"
            raise AssertionError(f"the server on port {port} {why}: {output or 'no output'}")
    raise AssertionError(f"the server lost its port to another process {attempts} times: {output}")
