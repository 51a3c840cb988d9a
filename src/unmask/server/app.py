"""`create_app(settings)`: the FastAPI app behind `unmask serve`.

Middleware, outermost first: Host/Origin refusal (403) -> CORS, only when origins are allowed
-> API key (401) and body size (413) -> unexpected errors (500) -> routes. One `Engine` serves
every route; it starts with the app and, on shutdown (SIGTERM), drains: running requests
finish, new ones get 503.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..engine import Engine
from . import errors, native, ollama, openai_routes, pull, responses
from .security import HeadAsGet, HostGuard, RequestGuard, SecurityHeaders
from .settings import Settings
from .state import ServerState, server
from .studio import STATIC_DIR, mount_studio

log = logging.getLogger("unmask.server")


def default_loader(name: str, quantize: str | None = None, dtype: str = "auto"):
    from ..engine import load

    return load(name, dtype=dtype, quantize=quantize)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    state = ServerState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        load = settings.loader or (lambda ref: default_loader(ref, settings.quantize, settings.dtype))
        state.engine = Engine(
            lambda name: load(state.catalog.reference(name)),
            settings.max_queue,
            settings.max_batch,
            settings.keep_alive,
            max_work=settings.limits.queued_work,
        )
        try:
            yield
        finally:
            engine, state.engine = state.engine, None
            # The worker finishes what was admitted; requests arriving now are told 503.
            await run_in_threadpool(engine.close, True, settings.limits.drain_seconds)

    app = FastAPI(
        title="unmask",
        version=__version__,
        summary="OpenAI-compatible and native (per-step) API for diffusion language models",
        lifespan=lifespan,
        # Swagger UI and ReDoc would load their scripts from a CDN into this origin; the schema is
        # at /openapi.json, and docs/api.md documents every route.
        docs_url=None,
        redoc_url=None,
    )
    app.state.server = state
    errors.install(app)
    app.add_middleware(errors.CatchAll)
    app.add_middleware(
        RequestGuard,
        api_key=settings.api_key,
        max_body=settings.limits.body_bytes,
        body_seconds=settings.limits.body_seconds,
    )
    if settings.allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allow_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    app.add_middleware(
        HostGuard, bound_host=settings.host, allowed_hosts=settings.allowed_hosts, allow_origins=settings.allow_origins
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HeadAsGet)

    @app.get("/health", tags=["server"])
    async def health(request: Request) -> dict:
        """Liveness, for load balancers and scripts; needs no API key and says nothing private."""
        engine = server(request).engine
        limits = {"max_tokens": settings.limits.max_tokens, "steps": settings.limits.steps}
        if engine is None:
            return {"status": "stopping", "in_flight": 0, "limits": limits}
        return {"status": "ok", "in_flight": engine.in_flight, "limits": limits}

    routers = [openai_routes.router, native.router, ollama.router, pull.router]
    for router in routers:
        app.include_router(router)
    api_routes = [r for r in app.routes if isinstance(r, APIRoute)] + [r for x in routers for r in x.routes]
    mount_studio(app, settings.studio_dir or STATIC_DIR, api_routes)
    app.openapi = lambda: openapi_with_limits(app, settings.limits)
    return app


# Schema properties whose upper bound is this server's limit rather than the options' own.
LIMITED_PROPERTIES = {
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "max_new_tokens": "max_tokens",
    "block_length": "max_tokens",
    "steps": "steps",
    "n": "choices",
    "best_of": "choices",
}


def openapi_with_limits(app: FastAPI, limits) -> dict:
    """/openapi.json with this deployment's limits as the maxima, so the schema tells the truth."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        for component in schema.get("components", {}).get("schemas", {}).values():
            for name, prop in component.get("properties", {}).items():
                if name in LIMITED_PROPERTIES:
                    bound = getattr(limits, LIMITED_PROPERTIES[name])
                    for option in prop.get("anyOf", [prop]):
                        if "maximum" in option:
                            option["maximum"] = min(option["maximum"], bound)
        app.openapi_schema = responses.document(schema)
    return app.openapi_schema
