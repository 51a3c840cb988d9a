"""`unmask serve --ray`: the server's FastAPI app on Ray Serve, one engine per replica.

Notable features:
- Each replica builds the very app `unmask serve` runs (`server.create_app`, built on the replica
  by `__serve_build_asgi_app__`, so nothing of it is pickled): the OpenAI, Ollama and native
  routes, the studio, the Host/Origin checks, the API key and the limits, unchanged. Its lifespan
  (Ray Serve runs it) starts the replica's engine and drains it when the replica stops.
- Serve's proxy takes the HTTP connections (on `--host` / `--port`) and routes each request to a
  replica; a replica admits at most `max_queue` requests (`max_ongoing_requests`), beyond which
  Serve queues them for another replica.
- Replicas: a fixed `--replicas N`, or autoscaling between `--min-replicas` and `--max-replicas`
  on `--target-ongoing` requests per replica (Serve's `autoscaling_config`).
- Every response names the replica that answered in `x-unmask-replica` (Serve's replica id), so
  a client or a test can see the requests spread (tests/test_ray.py).
"""

from __future__ import annotations

import signal
import threading

from ray import serve

from .ray_batch import connect

REPLICA_HEADER = b"x-unmask-replica"
APP_NAME = "unmask"
DELETE_SECONDS = 60  # replicas drain their engines (Limits.drain_seconds) before they stop


class ReplicaHeader:
    """ASGI middleware: every HTTP response says which replica answered it."""

    def __init__(self, app, name: str):
        self.app, self.name = app, name.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def tagged(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (REPLICA_HEADER, self.name)]}
            await send(message)

        await self.app(scope, receive, tagged)


@serve.ingress()
class UnmaskReplica:
    """One replica: the server's settings in, `create_app(settings)` out, with its own engine."""

    def __init__(self, settings, threads: int | None = None):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.settings = settings

    def __serve_build_asgi_app__(self):
        from ..server import create_app

        app = create_app(self.settings)
        app.add_middleware(ReplicaHeader, name=serve.get_replica_context().replica_tag)
        return app


def deployment_options(
    replicas: int,
    min_replicas: int | None,
    max_replicas: int | None,
    target_ongoing: float,
    num_cpus: float,
    num_gpus: float,
    max_ongoing: int,
) -> dict:
    """Serve's deployment options: a fixed count, or autoscaling when a bound is given."""
    options: dict = {
        "ray_actor_options": {"num_cpus": num_cpus, "num_gpus": num_gpus},
        "max_ongoing_requests": max_ongoing,
    }
    if min_replicas is None and max_replicas is None:
        options["num_replicas"] = replicas
        return options
    low = min_replicas if min_replicas is not None else 1
    high = max_replicas if max_replicas is not None else max(low, replicas)
    if low > high:
        raise ValueError(f"--min-replicas: {low} is more than --max-replicas {high}")
    options["autoscaling_config"] = {
        "min_replicas": low,
        "max_replicas": high,
        "initial_replicas": min(max(replicas, low), high),
        "target_ongoing_requests": target_ongoing,
    }
    return options


def start(settings, options: dict, threads: int | None = None) -> None:
    """Deploy the app on the connected cluster and return once every replica is up."""
    serve.start(http_options={"host": settings.host, "port": settings.port})
    deployment = serve.deployment(UnmaskReplica, name=APP_NAME, **options)
    serve.run(deployment.bind(settings, threads), name=APP_NAME, route_prefix="/", blocking=False)


def serve_on_ray(settings, address: str | None, options: dict, threads: int | None = None, on_ready=None) -> None:
    """`unmask serve --ray`: deploy, then wait for Ctrl-C or SIGTERM and take the app down."""
    connect(address)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    start(settings, options, threads)
    if on_ready is not None:
        on_ready()
    try:
        stop.wait()
    finally:
        # Bounded: a cluster that went down first (its processes stopped with ours) never answers.
        down = threading.Thread(target=serve.delete, args=(APP_NAME,), name="unmask-serve-delete", daemon=True)
        down.start()
        down.join(DELETE_SECONDS)
