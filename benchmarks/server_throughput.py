"""Server throughput: canvas tokens per second for 1, 4 and 16 concurrent requests, with the
engine batching them (`--max-batch 16`, the default) and serving them one at a time
(`--max-batch 1`), measured in the same run against two real `unmask serve` processes; both
per wall-clock second and per CPU second of the server process (robust on a shared machine).

Each request is an `/api/diffuse` call with `stop_at_eos: false`, so every request denoises its
whole canvas (the work is the same whatever the model says); prompts differ in length, so
batches are left-padded as real traffic would be. With `--temperature T` the requests are
sampled, each with its own seed: the engine batches them too (every row draws from its own
generator), and the run checks that each seeded request's text is the same from the batching
server as from the one-at-a-time server.

Measured (2 shared cores, bfloat16, `--temperature 0.8 --threads 1`): batched vs one at a time
1.24x at 4 and 1.56x at 16 concurrent (1.34x and 1.61x per server CPU second), and 16 of 16
seeded requests got the same canvas batched and alone at every level.

    python benchmarks/server_throughput.py                 # the embedded `story` model
    python benchmarks/server_throughput.py --model PATH    # any checkpoint folder
    python benchmarks/server_throughput.py --random-story  # story-shaped random weights (no download)
    python benchmarks/server_throughput.py --random-story --threads 1   # on a busy machine
    python benchmarks/server_throughput.py --temperature 0.8 --threads 1   # sampled, seeded
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PROMPTS = [
    "Once upon a time",
    "The little fox",
    "In a small village by the sea there lived",
    "Mia found a key",
    "The old bear was tired and",
    "One morning",
]
CONCURRENCY = (1, 4, 16)
REQUESTS_PER_LEVEL = 16  # every level serves this many requests, in rounds of its concurrency


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_story_model(folder: Path) -> Path:
    """The story recipe's architecture and a BPE tokenizer on its stories, with untrained weights."""
    import torch
    from safetensors.torch import save_file

    from unmask.models import architecture_for
    from unmask.tasks.stories import generate_corpus
    from unmask.train import recipes
    from unmask.train.bpe import save_tokenizer, train_bpe

    tokenizer = train_bpe(generate_corpus(2000, seed=0), recipes.STORY_VOCAB)
    config = recipes.llada_config(tokenizer.get_vocab_size(), d_model=256, n_layers=6, n_heads=4, mlp=768, max_len=1024)
    arch = architecture_for("llada")
    torch.manual_seed(0)
    net = arch.make_model(arch.make_args(config))
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(__import__("json").dumps(config))
    save_tokenizer(tokenizer, folder)
    recipes.write_generation_config(folder, {"max_new_tokens": 128, "steps": 64, "algorithm": "low_confidence"})
    return folder


class Server:
    def __init__(self, model: str, max_batch: int, threads: int | None = None, dtype: str = "auto"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {"UNMASK_MODELS": f"bench={model}"}
        command = [
            sys.executable,
            "-c",
            "from unmask.cli import main; main()",
            "serve",
            "bench",
            "--port",
            str(self.port),
            "--max-batch",
            str(max_batch),
            "--max-queue",
            "64",
            "--dtype",
            dtype,
        ]
        if threads:  # on a busy machine, torch's default threads spin against other work
            command += ["--threads", str(threads)]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {self.process.stderr.read()}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def one_level(url: str, concurrency: int, body: dict, texts: dict) -> tuple[float, int]:
    """Seconds and canvas tokens for REQUESTS_PER_LEVEL requests, `concurrency` at a time; each
    request's region goes into texts[(prompt, seed)]."""
    tokens = 0
    sampled = body.get("temperature", 0) > 0
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        started = time.perf_counter()
        for first in range(0, REQUESTS_PER_LEVEL, concurrency):
            batch = [body | {"prompt": PROMPTS[(first + i) % len(PROMPTS)]} for i in range(concurrency)]
            if sampled:
                batch = [b | {"seed": first + i} for i, b in enumerate(batch)]
            responses = await asyncio.gather(*(http.post("/api/diffuse", json=b) for b in batch))
            for b, r in zip(batch, responses):
                r.raise_for_status()
                tokens += len(r.json()["region"])
                texts[(b["prompt"], b.get("seed"))] = r.json()["region"]
        return time.perf_counter() - started, tokens


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc); None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def measure(model: str, body: dict, threads: int | None = None, dtype: str = "auto"):
    """(tokens per wall second, tokens per server CPU second) per server and concurrency.

    Both servers run side by side (an idle one costs nothing) and are measured in A-B-B-A
    order per level, so load that drifts during the run biases neither. On a shared machine
    wall-clock rates swing with other work; tokens per CPU second of the server process does
    not, and shows the work batching saves. Also returns, per concurrency, how many requests got
    the same canvas from both servers."""
    servers = {"one": Server(model, 1, threads, dtype), "batched": Server(model, 16, threads, dtype)}
    try:
        for server in servers.values():
            httpx.post(f"{server.url}/api/diffuse", json=body | {"prompt": "warm up"}, timeout=600).raise_for_status()
        rates: dict[str, dict[int, tuple[float, float | None]]] = {name: {} for name in servers}
        same: dict[int, tuple[int, int]] = {}
        for c in CONCURRENCY:
            texts: dict[str, dict] = {n: {} for n in servers}
            wall, cpu, tokens = {n: 0.0 for n in servers}, {n: 0.0 for n in servers}, {n: 0 for n in servers}
            for name in ("one", "batched", "batched", "one"):
                pid = servers[name].process.pid
                cpu_before = cpu_seconds(pid)
                s, t = asyncio.run(one_level(servers[name].url, c, body, texts[name]))
                cpu_after = cpu_seconds(pid)
                wall[name] += s
                tokens[name] += t
                cpu[name] += (cpu_after - cpu_before) if cpu_before is not None and cpu_after is not None else 0.0
            for name in servers:
                rates[name][c] = (tokens[name] / wall[name], tokens[name] / cpu[name] if cpu[name] else None)
            keys = texts["one"].keys() & texts["batched"].keys()
            same[c] = (sum(texts["one"][k] == texts["batched"][k] for k in keys), len(keys))
        return rates, same
    finally:
        for server in servers.values():
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="story", help="model reference (embedded name, folder, hub id)")
    parser.add_argument("--random-story", action="store_true", help="story-shaped model with random weights")
    parser.add_argument("--tokens", type=int, default=64, help="canvas length per request")
    parser.add_argument("--steps", type=int, default=32, help="denoising steps per request")
    parser.add_argument("--threads", type=int, help="CPU threads per server (default: auto)")
    parser.add_argument("--temperature", type=float, default=0.0, help="> 0: sampled requests, a seed each")
    parser.add_argument("--dtype", default="auto", help="the servers' dtype")
    args = parser.parse_args()
    model = args.model
    if args.random_story:
        model = str(random_story_model(Path(tempfile.mkdtemp()) / "story-random"))
    body = {"max_new_tokens": args.tokens, "steps": args.steps, "stop_at_eos": False, "stream": False}
    if args.temperature > 0:
        body["temperature"] = args.temperature
    print(
        f"model {args.model if not args.random_story else 'story-shaped, random weights'}; "
        f"{args.tokens} tokens, {args.steps} steps per request; {REQUESTS_PER_LEVEL} requests per level, twice; "
        f"threads per server: {args.threads or 'auto'}; dtype {args.dtype}; "
        f"{'sampled at temperature ' + str(args.temperature) + ', seeded' if args.temperature else 'greedy'}",
        flush=True,
    )
    rates, same = measure(model, body, args.threads, args.dtype)
    single, batched = rates["one"], rates["batched"]
    print(f"{'':>10} {'tokens per wall second':^40} {'tokens per server CPU second':^40}")
    header = f"{'one':>12} {'batched':>12} {'ratio':>12}"
    print(f"{'concurrent':>10} {header:>40} {header:>40}")
    for c in CONCURRENCY:
        (w1, c1), (wb, cb) = single[c], batched[c]
        cpu = f"{c1:>12.1f} {cb:>12.1f} {cb / c1:>11.2f}x" if c1 and cb else f"{'n/a':>38}"
        print(f"{c:>10} {w1:>12.1f} {wb:>12.1f} {wb / w1:>11.2f}x {cpu:>40}")
    for c in CONCURRENCY:
        print(f"concurrency {c}: {same[c][0]} of {same[c][1]} requests got the same canvas batched and alone")


if __name__ == "__main__":
    main()
