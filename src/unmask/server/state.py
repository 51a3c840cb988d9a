"""What every route reaches through `request.app.state.server`."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from ..engine import Engine
from .catalog import Catalog
from .errors import APIError
from .settings import Settings


@dataclass
class ServerState:
    settings: Settings
    engine: Engine | None = None  # created at startup, closed (drained) at shutdown
    catalog: Catalog = field(init=False)

    def __post_init__(self):
        self.catalog = Catalog(self.settings, lambda: self.running_engine)

    @property
    def running_engine(self) -> Engine:
        if self.engine is None:
            raise APIError(
                503, "the server is starting or stopping; retry shortly", code="not_ready", headers={"Retry-After": "1"}
            )
        return self.engine

    def drain(self) -> None:
        """Take no new requests; give running ones the drain time, then cancel them (blocks)."""
        if self.engine is not None:
            self.engine.close(True, self.limits.drain_seconds)

    @property
    def limits(self):
        return self.settings.limits


def server(request: Request) -> ServerState:
    return request.app.state.server
