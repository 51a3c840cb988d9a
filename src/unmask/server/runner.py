"""Running the app under uvicorn, as `unmask serve` and the tests do.

Notable features:
- `HeaderDeadline`, uvicorn's h11 protocol with one more timer: a connection whose request
  headers are not complete `Limits.header_seconds` after it opened (or after its last response
  once bytes of a new request arrive) gets a 408 and is closed, as nginx's
  `client_header_timeout` does, so clients that trickle headers (slowloris) cannot hold sockets.
  Stalled bodies are `RequestGuard`'s; idle keep-alive connections are uvicorn's own timer.
- `DrainingServer.shutdown` (SIGTERM, Ctrl-C) starts the engine's drain at once: new requests
  get 503, running ones have `Limits.drain_seconds` to finish, then are cancelled, so every
  stream ends with a `shutting_down` error frame before uvicorn's grace period closes sockets.
"""

from __future__ import annotations

import asyncio
import json
import socket

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

# What the drain leaves uvicorn for the cancelled streams' last frames to go out.
FLUSH_SECONDS = 2.0
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"x-content-type-options: nosniff\r\ncontent-length: %d\r\n\r\n%s"
)

LATE_HEADERS = json.dumps(
    {
        "error": {
            "message": "headers: the request headers took too long to arrive",
            "type": "invalid_request_error",
            "param": "headers",
            "code": "request_timeout",
        }
    },
    separators=(",", ":"),
).encode()


class HeaderDeadline(H11Protocol):
    header_seconds = 10.0  # set per server by `config`

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._deadline = self.loop.call_later(self.header_seconds, self._headers_late)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._disarm()
        elif self._deadline is None and not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.header_seconds, self._headers_late)

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.write(REQUEST_TIMEOUT % (len(LATE_HEADERS), LATE_HEADERS))
            self.transport.close()


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI):
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        state = self.app.state.server
        drain = asyncio.create_task(asyncio.to_thread(state.drain))
        await super().shutdown(sockets)
        await drain


def uvicorn_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """uvicorn's settings for an unmask app: our protocol, and a grace period past the drain."""
    limits = app.state.server.limits
    protocol = type("HeaderDeadline", (HeaderDeadline,), {"header_seconds": limits.header_seconds})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        http=protocol,
        timeout_graceful_shutdown=int(limits.drain_seconds + FLUSH_SECONDS + 0.999),
    )


def make_server(app: FastAPI, host: str, port: int) -> DrainingServer:
    return DrainingServer(uvicorn_config(app, host, port), app)
