"""One error shape for every route, status and stream: `{"error": {message, type, param, code}}`.

Notable features:
- `APIError` is the server's one exception type; everything else is mapped to it once, here:
  request validation (422 becomes 400 naming the field), `GenerationOptions` errors (whose
  messages start with the field name), `RequestError` from the text edges, engine refusals
  (429 / 503 with Retry-After) and anything unexpected (`CatchAll`: 500 with a fixed message,
  so no traceback or file path ever reaches a client; the details go to the server log).
- `param` uses the request's own field names (`max_tokens` on OpenAI routes even though the
  options call it `max_new_tokens`) and JSON paths for nested fields (`messages[2].content`).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("unmask.server")

# Pydantic puts the union member it tried into error locations ('str', 'list[int]', ...);
# those name a type, not a field, so they are left out of `param`.
_TYPE_TAG = re.compile(r"^(str|int|float|bool|none|list|dict|literal|json|[A-Z]\w*)(\[.*\])?$|[\[\-(]")
_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([a-z_][a-z0-9_]*(?:\[\d+\])?(?:\.[a-z_]+)*): (.*)$", re.DOTALL)

STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_unavailable",
}


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type or STATUS_TYPES.get(status, "invalid_request_error")
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self, ollama: bool = False) -> JSONResponse:
        """The error response; `ollama`: Ollama's shape, `{"error": "message"}`, for its routes."""
        body = {"error": self.message} if ollama else self.body()
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def invalid(param: str | None, message: str, code: str | None = None) -> APIError:
    """A 400 whose message starts with the field it is about."""
    text = f"{param}: {message}" if param else message
    return APIError(400, text, param=param, code=code)


def internal_error() -> APIError:
    return APIError(500, "the server failed while handling this request; the server log has the details")


def param_from_loc(loc: tuple, renames: dict[str, str] | None = None) -> str | None:
    """('body', 'messages', 2, 'content') -> 'messages[2].content'."""
    parts: list[str] = []
    for item in loc:
        if item == "body" and not parts:
            continue
        if isinstance(item, int):
            if parts:
                parts[-1] += f"[{item}]"
            continue
        item = str(item)
        if parts and _TYPE_TAG.search(item):
            continue
        parts.append((renames or {}).get(item, item) if not parts else item)
    return ".".join(parts) or None


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def from_validation(errors: list[dict], renames: dict[str, str] | None = None) -> APIError:
    """A pydantic error list as one 400 (pydantic messages already quote the allowed range)."""
    if not errors:
        return invalid("body", "the request body is not valid")
    # A value that matches no member of a union fails once per member; the error that is not
    # a plain type mismatch ("at most 4 items" beside "should be a string") says what is wrong.
    err = next((e for e in errors if not str(e.get("type", "")).endswith("_type")), errors[0])
    kind, msg, loc = err.get("type", ""), str(err.get("msg", "invalid value")), tuple(err.get("loc", ()))
    if kind == "json_invalid":
        return invalid("body", f"not valid JSON ({err.get('ctx', {}).get('error', msg)})", code="invalid_json")
    if kind == "missing" and loc in (("body",), ()):
        return invalid("body", "a JSON object body is required")
    prefixed = _FIELD_PREFIX.match(msg)
    if prefixed and (kind == "value_error" or not loc or loc == ("body",)):
        field = (renames or {}).get(prefixed.group(1), prefixed.group(1))
        return invalid(field, prefixed.group(2))
    param = param_from_loc(loc, renames) or "body"
    if kind == "extra_forbidden":
        return invalid(param, "unknown field; see docs/api.md for the fields this endpoint takes", code="unknown_field")
    msg = msg.removeprefix("Value error, ")
    if kind != "missing" and "input" in err:
        msg = f"{msg} (got {_short(err['input'])})"
    return invalid(param, msg)


def from_options_error(err: ValidationError | ValueError, renames: dict[str, str] | None = None) -> APIError:
    """A GenerationOptions (or sampler plan) error, with the field renamed to the request's name."""
    if isinstance(err, ValidationError):
        return from_validation(err.errors(include_url=False), renames)
    text = str(err)
    prefixed = _FIELD_PREFIX.match(text)
    if prefixed:
        field = (renames or {}).get(prefixed.group(1), prefixed.group(1))
        return invalid(field, prefixed.group(2))
    return invalid(None, text)


# Ollama's routes (server/ollama.py) answer errors in Ollama's shape.
OLLAMA_PATHS = frozenset(
    {"/api/generate", "/api/chat", "/api/tags", "/api/show", "/api/ps", "/api/version", "/api/pull"}
)


def is_ollama(request: Request) -> bool:
    return request.url.path in OLLAMA_PATHS


def install(app: FastAPI) -> None:
    """Map every exception the app can raise to the one error shape."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, err: APIError) -> JSONResponse:
        return err.response(is_ollama(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError) -> JSONResponse:
        return from_validation(list(err.errors())).response(is_ollama(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        path = request.url.path[:100]
        messages = {
            404: f"no route {path!r}; /openapi.json lists them",
            405: f"{request.method} is not allowed on {path!r}",
        }
        message = messages.get(err.status_code) or str(err.detail)
        code = {404: "unknown_route", 405: "method_not_allowed"}.get(err.status_code)
        error = APIError(err.status_code, message, code=code, headers=dict(err.headers or {}))
        return error.response(is_ollama(request))


class CatchAll:
    """Innermost middleware: an unexpected exception becomes the fixed 500 (or, once a stream
    has started, just ends it) and is logged here. Starlette's own handler for `Exception`
    re-raises after answering, which lets the server reset the connection."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await internal_error().response(scope.get("path") in OLLAMA_PATHS)(scope, receive, send)
