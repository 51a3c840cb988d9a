"""Safe defaults for a server that every web page on the machine can reach.

Notable features:
- `HostGuard` refuses (403) a `Host` that is not a name of this server: a DNS-rebinding page
  reaches 127.0.0.1 under its own domain name, and only the Host header shows it. Accepted: the
  loopback names (`localhost`, `*.localhost`, 127.0.0.1, ::1), the bound host, names the operator
  adds, and, when bound to every interface, any IP literal (an IP cannot be rebound).
- It also refuses a foreign `Origin`, `null` included (sandboxed iframes and file:// pages send
  it; generated HTML in the studio runs in exactly such an iframe). The studio itself is served
  from this origin, so its own requests pass; other origins pass only when allowed (CORS).
- `RequestGuard` runs inside CORS, so its refusals carry CORS headers for allowed origins:
  the API key (401; `/health` and the studio's static files are public), the body size (413,
  from Content-Length or by counting a chunked body before the app sees any of it), and a body
  that stalls (408 after `Limits.body_seconds` without a byte), so a slow client cannot hold a slot.
- `HeadAsGet`: HEAD on any GET resource gets its headers (HTTP's rule).
- `SecurityHeaders`, outermost: `nosniff`, `no-referrer` and a locked-down Permissions-Policy on
  every response, errors and refusals included.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import socket
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import OLLAMA_PATHS, APIError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
PUBLIC_PATHS = frozenset({"/health"})
BASELINE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), usb=(), payment=()"),
)
# Everything under these needs the API key when one is set; other paths are the studio's files.
PROTECTED_PREFIXES = ("/v1", "/api", "/openapi.json", "/docs", "/redoc")


def split_host(value: str) -> str:
    """'Example.com:8471' -> 'example.com'; '[::1]:8471' -> '::1'."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


async def refuse(scope: Scope, receive: Receive, send: Send, error: APIError) -> None:
    await error.response(scope.get("path") in OLLAMA_PATHS)(scope, receive, send)


class HostGuard:
    def __init__(self, app: ASGIApp, bound_host: str, allowed_hosts: list[str], allow_origins: list[str]):
        self.app = app
        self.wildcard = bound_host in WILDCARD_HOSTS
        names = set(LOOPBACK_NAMES) | {split_host(h) for h in allowed_hosts}
        if self.wildcard:
            names.add(socket.gethostname().lower())
        else:
            names.add(split_host(bound_host))
        self.names = frozenset(names)
        self.any_origin = "*" in allow_origins
        self.origins = frozenset(o.rstrip("/").lower() for o in allow_origins if o != "*")

    def host_allowed(self, host: str) -> bool:
        name = split_host(host)
        return name in self.names or name.endswith(".localhost") or (self.wildcard and is_ip(name))

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        origin = origin.strip().lower().rstrip("/")
        if origin == "null":
            return False
        if self.any_origin or origin in self.origins:
            return True
        # Same origin: the page was served by this server (its Host already passed the check).
        return host is not None and urlsplit(origin).netloc == host.strip().lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        host, origin = headers.get("host"), headers.get("origin")
        error = None
        if host is not None and not self.host_allowed(host):
            error = APIError(
                403,
                f"host: {split_host(host)[:100]!r} is not a name of this server (DNS rebinding "
                "protection); use localhost, or start the server with that host",
                code="forbidden_host",
            )
        elif origin is not None and not self.origin_allowed(origin, host):
            error = APIError(
                403,
                f"origin: requests from {origin[:100]!r} are not allowed; start the server with "
                "--allow-origin to let a web page call it",
                code="forbidden_origin",
            )
        if error is not None:
            return await refuse(scope, receive, send, error)
        await self.app(scope, receive, send)


class RequestGuard:
    def __init__(self, app: ASGIApp, api_key: str | None, max_body: int, body_seconds: float = 30.0):
        self.app, self.body_seconds = app, body_seconds
        self.key = api_key.encode() if api_key else None
        self.max_body = max_body

    def needs_key(self, scope: Scope) -> bool:
        path = scope["path"]
        if self.key is None or path in PUBLIC_PATHS:
            return False
        return path.startswith(PROTECTED_PREFIXES)

    def key_ok(self, headers: Headers) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        if self.needs_key(scope) and not self.key_ok(headers):
            missing_key = APIError(
                401,
                "a valid API key is needed: send the header 'Authorization: Bearer <key>'",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
            return await refuse(scope, receive, send, missing_key)
        too_big = APIError(
            413, f"body: the request body is larger than {self.max_body} bytes", param="body", code="body_too_large"
        )
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await refuse(scope, receive, send, too_big)
        # Read the whole body first (it is bounded), so nothing downstream sees a partial one.
        chunks, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.body_seconds)
            except asyncio.TimeoutError:
                stalled = APIError(
                    408, f"body: no data for {self.body_seconds:g} s; send the body whole", code="body_timeout"
                )
                return await refuse(scope, receive, send, stalled)
            if message["type"] != "http.request":
                return  # the client left before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return await refuse(scope, receive, send, too_big)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # afterwards: http.disconnect when the client leaves

        await self.app(scope, replay, send)


class SecurityHeaders:
    """Adds the baseline headers to every response that does not set them itself."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in BASELINE_HEADERS if k not in present]
                if extra:
                    message = dict(message)
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class HeadAsGet:
    """HEAD answered as GET without the body, on every GET route (HTTP's rule), so the OpenAPI
    schema need not list each route twice."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def headers_only(message) -> None:
            if message["type"] == "http.response.body":
                message = {"type": "http.response.body", "body": b"", "more_body": False}
                if getattr(headers_only, "sent", False):
                    return
                headers_only.sent = True
            await send(message)

        await self.app(dict(scope, method="GET"), receive, headers_only)
