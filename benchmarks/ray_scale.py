"""Ray scaling: 1 vs 2 replicas in one run, for `unmask batch --ray` (lines/s, Ray Data actors) and
`unmask serve --ray` (requests/s, Ray Serve replicas), as ratios.

A local Ray instance (loopback, `--cpus` CPUs, one CPU and one torch thread per replica) runs the
same job twice: the batch over `--lines` lines (`--batch-size` per actor call; the time includes
the actors' start and model load, what a job costs), and `--requests` native `/api/diffuse`
requests, `--concurrency` at a time, against a warmed-up deployment (`stop_at_eos: false`, so
every request denoises its whole canvas). Each batch line and request is seeded; the run checks
that 1 and 2 replicas gave the same texts.

Measured on 2 cores shared with other jobs (load average 7-19): 2 vs 1 replicas lines/s 1.01x and
0.56x, requests/s 0.82x and 0.65x (no free core for the second replica); see docs/scale.md.

    python benchmarks/ray_scale.py
    python benchmarks/ray_scale.py --lines 400 --requests 64 --max-new-tokens 64 --steps 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import time

import httpx

PROMPTS = ["Once upon a time", "The little fox", "In a small village by the sea there lived", "Mia found a key"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batch_run(args, replicas: int) -> tuple[float, float, list[str]]:
    """(lines/s, lines/s after the first answer, texts) of one Ray Data job: the first counts the
    actors' start and model load, the second only the steady stream."""
    from unmask.scale.lines import JobSettings, read_lines
    from unmask.scale.ray_batch import answer_on_ray

    raw = [json.dumps({"prompt": PROMPTS[i % len(PROMPTS)], "seed": i, "temperature": 0.8}) for i in range(args.lines)]
    settings = JobSettings({"max_new_tokens": args.max_new_tokens, "steps": args.steps, "stop_at_eos": False})
    started = time.perf_counter()
    answers, first = [], None
    for answer in answer_on_ray(
        args.model, read_lines(raw), settings, replicas=replicas, batch_size=args.batch_size, threads=1
    ):
        answers.append(answer)
        first = first or time.perf_counter()
    end = time.perf_counter()
    assert all("text" in a for a in answers), [a for a in answers if "error" in a][:1]
    return len(answers) / (end - started), (len(answers) - 1) / (end - first), [a["text"] for a in answers]


async def fire(port: int, args) -> tuple[float, list[str]]:
    """(requests/s, texts) of `--requests` requests, `--concurrency` in flight."""
    url = f"http://127.0.0.1:{port}/api/diffuse"
    gate = asyncio.Semaphore(args.concurrency)

    async def one(client, i):
        body = {
            "model": args.model,
            "prompt": PROMPTS[i % len(PROMPTS)],
            "stream": False,
            "max_new_tokens": args.max_new_tokens,
            "steps": args.steps,
            "stop_at_eos": False,
            "seed": i,
            "temperature": 0.8,
        }
        async with gate:
            r = await client.post(url, json=body, timeout=600)
            r.raise_for_status()
            return r.json()["text"]

    async with httpx.AsyncClient() as client:
        await asyncio.gather(*(one(client, i) for i in range(2 * args.concurrency)))  # warm every replica
        started = time.perf_counter()
        texts = await asyncio.gather(*(one(client, i) for i in range(args.requests)))
    return args.requests / (time.perf_counter() - started), list(texts)


def serve_run(args, replicas: int) -> tuple[float, list[str]]:
    from ray import serve

    from unmask.scale.ray_serve import APP_NAME, deployment_options, start
    from unmask.server.settings import Settings

    port = free_port()
    settings = Settings(model=args.model, port=port)
    start(settings, deployment_options(replicas, None, None, 2.0, 1, 0, settings.max_queue), threads=1)
    try:
        return asyncio.run(fire(port, args))
    finally:
        serve.delete(APP_NAME)
        serve.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="story")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        lines = {n: batch_run(args, n) for n in (1, 2)}
        requests = {n: serve_run(args, n) for n in (1, 2)}
    finally:
        ray.shutdown()
    same_lines = lines[1][2] == lines[2][2]
    same_requests = requests[1][1] == requests[2][1]
    (whole1, steady1, _), (whole2, steady2, _) = lines[1], lines[2]
    print(f"batch --ray: {whole1:.1f} lines/s with 1 replica, {whole2:.1f} with 2 (actor start included)")
    print(f"batch --ray after the first answer: {steady1:.1f} lines/s with 1 replica, {steady2:.1f} with 2")
    print(f"serve --ray: {requests[1][0]:.2f} requests/s with 1 replica, {requests[2][0]:.2f} with 2")
    print(
        f"2 vs 1 replicas: lines/s {whole2 / whole1:.2f}x ({steady2 / steady1:.2f}x after the first answer), "
        f"requests/s {requests[2][0] / requests[1][0]:.2f}x"
    )
    print(f"seeded texts equal with 1 and 2 replicas: batch {same_lines}, serve {same_requests}")
    print(f"load average (other processes share the cores): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
