"""The studio's files, served from this origin (so its API calls pass the Origin check), and the
previews of generated code.

Notable features:
- `mount_studio` is the one place the studio hooks into the server. Static files need no API
  key: they hold no data, only the app. They are sent with a strict Content-Security-Policy:
  scripts and styles from this origin only, no framing of the studio, and frames limited to
  `/preview/`, which also stops a preview frame from navigating itself anywhere else.
- Generated HTML never runs with the studio's origin. `POST /api/preview` keeps a document in
  memory under an unguessable id; `GET /preview/{id}` serves it with a CSP `sandbox` (an opaque
  origin: no cookies, storage or same-origin reads) and no network at all (`default-src 'none'`,
  `connect-src 'none'`, no forms, frames, workers or base URL). The studio shows it in an
  `<iframe sandbox="allow-scripts">`, never with `allow-same-origin`.
- `GET /preview/{id}/tab` is the "open in new tab" page: a script-free frame around the same
  document, so that even at the top level its navigations stay inside `/preview/{id}`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
from collections import OrderedDict
from html.parser import HTMLParser
from pathlib import Path
from threading import Lock

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from .errors import OLLAMA_PATHS, APIError, invalid

STATIC_DIR = Path(__file__).resolve().parent.parent / "studio" / "static"

PREVIEW_MAX_CHARS = 512 * 1024  # a generated page is a few KiB; this bounds memory per preview
PREVIEW_SLOTS = 256  # previews kept; the oldest is dropped first (they are cheap to recreate)
PREVIEW_BUDGET_CHARS = 16 * 1024 * 1024  # ...and all of them together stay under this
# Each script and handler gets the guard and a hash in the CSP header: this bounds both.
PREVIEW_MAX_SCRIPTS = 256
PREVIEW_TTL = 6 * 3600.0  # seconds a preview stays reachable
PREVIEW_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")  # secrets.token_urlsafe(16)

# The generated document: its own inline scripts (by hash, see `prepare_preview`) and styles,
# images from data:/blob:, nothing else: no fetch, sockets, forms, frames, workers or base URL.
PREVIEW_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; media-src data: blob:; connect-src 'none'; form-action 'none'; "
    "base-uri 'none'; frame-src 'none'; child-src 'none'; worker-src 'none'; object-src 'none'; "
    "manifest-src 'none'; frame-ancestors 'self'"
)
# CSP cannot stop WebRTC (its `webrtc` directive is not implemented), so every script and event
# handler of a preview starts with this: it removes the WebRTC constructors from the realm it
# runs in, before any of the document's own code. The global comes from a sloppy function's
# `this`, never from a name an event handler's scope (its form, its element) could shadow.
PREVIEW_GUARD = (
    "(function(g){try{for(var n=['RTCPeerConnection','webkitRTCPeerConnection','RTCDataChannel','RTCIceTransport',"
    "'RTCDtlsTransport','RTCSctpTransport','RTCRtpSender','RTCRtpReceiver','RTCRtpTransceiver','RTCIceCandidate',"
    "'RTCSessionDescription','RTCCertificate'],i=0;i<n.length;i++){var d=g.Object.getOwnPropertyDescriptor(g,n[i]);"
    "if(!d||d.configurable)g.Object.defineProperty(g,n[i],{value:void 0,writable:false,configurable:false})}}"
    "catch(e){}})((function(){return this})()||globalThis);"
)
JS_TYPES = frozenset(
    {
        "",
        "text/javascript",
        "application/javascript",
        "module",
        "text/ecmascript",
        "application/ecmascript",
        "text/jscript",
        "text/livescript",
    }
)
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), usb=(), serial=(), hid=(), "
    "payment=(), display-capture=(), clipboard-read=()",
}


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    html: str = Field(..., max_length=PREVIEW_MAX_CHARS, description="A complete HTML document to preview.")


class GuardScripts(HTMLParser):
    """Finds inline scripts and event-handler attributes, as (start, end, replacement) edits."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=False)
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.edits: list[tuple[int, int, str]] = []
        self.hashes: list[str] = []
        self.script_from: int | None = None

    def here(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def allow(self, code: str) -> str:
        if len(self.hashes) >= PREVIEW_MAX_SCRIPTS:
            raise ValueError(f"at most {PREVIEW_MAX_SCRIPTS} inline scripts and event handlers in a preview")
        digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
        self.hashes.append(f"'sha256-{digest}'")
        return code

    def handle_starttag(self, tag, attrs):
        start, raw = self.here(), self.get_starttag_text() or ""
        if any(name.startswith("on") and value is not None for name, value in attrs):
            parts = [f"<{tag}"]
            for name, value in attrs:
                if value is None:
                    parts.append(f" {name}")
                    continue
                if name.startswith("on"):
                    value = self.allow(PREVIEW_GUARD + value)
                parts.append(f' {name}="{html.escape(value, quote=True)}"')
            self.edits.append((start, start + len(raw), "".join(parts) + ("/>" if raw.endswith("/>") else ">")))
        if tag == "script" and not raw.endswith("/>"):
            kind = (dict(attrs).get("type") or "").strip().lower()
            self.script_from = start + len(raw) if kind in JS_TYPES and "src" not in dict(attrs) else None

    def handle_endtag(self, tag):
        if tag == "script" and self.script_from is not None:
            self.close_script(self.here())

    def close_script(self, end: int) -> None:
        start, self.script_from = self.script_from, None
        code = self.allow(PREVIEW_GUARD + self.source[start:end])
        self.edits.append((start, end, code))


def prepare_preview(document: str) -> tuple[str, str]:
    """The document as served (each inline script and handler guard-prefixed) and its CSP, which
    allows exactly those scripts by hash. A script this parser does not see as one (the browser's
    parser differs in corners) is not in the list, so the browser refuses it: a mismatch fails
    closed. A frame the document nests (srcdoc) inherits the CSP, so it can run only guarded code."""
    # What the browser does to its input first, so the hashes are of the text it will see.
    source = document.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    parser = GuardScripts(source)
    parser.feed(source)
    parser.close()
    if parser.script_from is not None:  # a script left open runs to the end of the document
        parser.close_script(len(source))
    out, pos = [], 0
    for start, end, text in sorted(parser.edits):
        out += [source[pos:start], text]
        pos = end
    out.append(source[pos:])
    scripts = " ".join(dict.fromkeys(parser.hashes)) + " 'unsafe-hashes'" if parser.hashes else "'none'"
    return "".join(out), PREVIEW_CSP.format(scripts=scripts)


class PreviewStore:
    """Generated documents (as served, with their CSP) by id, in memory, bounded in count, size and age."""

    def __init__(self, slots: int = PREVIEW_SLOTS, ttl: float = PREVIEW_TTL, budget: int = PREVIEW_BUDGET_CHARS):
        self.slots, self.ttl, self.budget = slots, ttl, budget
        self._chars = 0
        self._items: OrderedDict[str, tuple[float, tuple[str, str]]] = OrderedDict()
        self._lock = Lock()

    def put(self, document: str) -> str:
        key = secrets.token_urlsafe(16)
        prepared = prepare_preview(document)
        with self._lock:
            self._items[key] = (time.monotonic(), prepared)
            self._chars += len(prepared[0])
            while len(self._items) > self.slots or self._chars > self.budget:
                _, (_, dropped) = self._items.popitem(last=False)
                self._chars -= len(dropped[0])
        return key

    def get(self, key: str) -> tuple[str, str] | None:
        with self._lock:
            item = self._items.get(key)
        if item is None or time.monotonic() - item[0] > self.ttl:
            return None
        return item[1]


def page_origin(scope: Scope) -> str | None:
    """'http://127.0.0.1:8471' as the browser sees this server (from the Host header it sent)."""
    for name, value in scope.get("headers", []):
        if name == b"host":
            host = value.decode("latin-1")
            if re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", host):
                return f"{scope.get('scheme', 'http')}://{host}"
    return None


def studio_csp(origin: str | None) -> str:
    # Frames may show previews only: a preview that navigates itself elsewhere is blocked here.
    frames = f"{origin}/preview/" if origin else "'none'"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; "
        f"connect-src 'self'; frame-src {frames}; child-src {frames}; worker-src 'none'; object-src 'none'; "
        "media-src 'none'; manifest-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


class StudioFiles(StaticFiles):
    """The studio's static files, each sent with the studio's security headers.

    Mounted at /, it sees every request no route took: a known API path asked with the wrong
    method is a 405 naming the methods it takes (the router alone would hand it here as a missing
    file), and any method but GET/HEAD on a path that is no file is a 404, not a 405."""

    def __init__(self, *args, api_routes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.api_routes = api_routes

    async def misrouted(self, scope: Scope, receive: Receive, send: Send) -> bool:
        allowed = set()
        # As the app's router saw it: the mount's scope has its own root_path.
        probe = {"type": "http", "path": scope["path"], "root_path": "", "method": scope["method"]}
        for route in self.api_routes:
            match, _ = route.matches(probe)
            if match == Match.PARTIAL:
                allowed |= set(getattr(route, "methods", ()) or ())
        method, path = scope["method"], scope["path"][:100]
        if allowed:
            shown = ", ".join(sorted(allowed))
            error = APIError(405, f"{method} is not allowed on {path!r}; it takes {shown}", code="method_not_allowed",
                             headers={"Allow": shown})  # fmt: skip
        elif method not in ("GET", "HEAD"):
            try:
                _, found = self.lookup_path(self.get_path(scope) or "index.html")
            except (OSError, ValueError):
                found = None
            if found is not None or path in ("/", ""):
                error = APIError(405, f"{method} is not allowed on {path!r}", code="method_not_allowed",
                                 headers={"Allow": "GET, HEAD"})  # fmt: skip
            else:
                error = APIError(404, f"no route {path!r}; /openapi.json lists them", code="unknown_route")
        else:
            return False
        await error.response(scope["path"] in OLLAMA_PATHS)(scope, receive, send)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and await self.misrouted(scope, receive, send):
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in COMMON_HEADERS.items() if k != "Cache-Control"]
        extra += [
            (b"content-security-policy", studio_csp(page_origin(scope)).encode()),
            (b"cache-control", b"no-cache"),  # revalidate: an upgraded package shows at once
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
        ]

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


# The atom mark (img/favicon.svg) as the tab's icon, inline: the browser asks no server for /favicon.ico.
TAB_ICON = "data:image/svg+xml;base64," + (
    "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9Ii02MCAtNjAgMTIwIDEyMCI+PHJlY3QgeD0i"
    "LTYwIiB5PSItNjAiIHdpZHRoPSIxMjAiIGhlaWdodD0iMTIwIiByeD0iMjgiIGZpbGw9IiMxNzEyMWYiLz48ZyBmaWxsPSJub25l"
    "IiBzdHJva2U9IiNhNzhiZmEiIHN0cm9rZS13aWR0aD0iNiI+PGVsbGlwc2Ugcng9IjQ0IiByeT0iMTUiIHRyYW5zZm9ybT0icm90"
    "YXRlKDI4KSIvPjxlbGxpcHNlIHJ4PSI0NCIgcnk9IjE1IiB0cmFuc2Zvcm09InJvdGF0ZSgtMjgpIi8+PC9nPjxjaXJjbGUgcj0i"
    "MTMiIGZpbGw9IiNmNGY0ZjUiLz48Y2lyY2xlIGN4PSIzOC44IiBjeT0iMjAuNiIgcj0iNiIgZmlsbD0iI2ZiYmYyNCIvPjxjaXJj"
    "bGUgY3g9Ii0zOC44IiBjeT0iMjAuNiIgcj0iNiIgZmlsbD0iI2ZiYmYyNCIvPjwvc3ZnPg=="
)


def tab_page(key: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Preview · unmask</title>
<link rel="icon" href="{TAB_ICON}">
<style>
html,body{{margin:0;height:100%;background:#0b0b0f;color:#a1a1aa;font:13px/1.4 system-ui,sans-serif}}
body{{display:flex;flex-direction:column}}
header{{padding:8px 14px;border-bottom:1px solid #27272a;display:flex;gap:10px;align-items:center}}
b{{color:#e4e4e7;font-weight:600}}
iframe{{flex:1;border:0;width:100%;background:#fff}}
</style></head>
<body><header><b>unmask preview</b><span>sandboxed: no network, no access to the studio</span></header>
<iframe sandbox="allow-scripts" src="/preview/{key}" title="Generated code preview"></iframe>
</body></html>"""


def tab_csp(origin: str | None, key: str) -> str:
    frame = f"{origin}/preview/{key}" if origin else "'none'"
    return (
        f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'; frame-src {frame}; "
        f"child-src {frame}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def add_preview_routes(app: FastAPI, store: PreviewStore) -> None:
    @app.post("/api/preview", tags=["studio"])
    async def create_preview(body: PreviewBody) -> dict:
        """Keep a generated document for the sandboxed preview; answers its URLs."""
        try:
            key = store.put(body.html)
        except ValueError as err:
            raise invalid("html", str(err)) from None
        return {"id": key, "url": f"/preview/{key}", "tab_url": f"/preview/{key}/tab"}

    def lookup(key: str) -> tuple[str, str]:
        found = store.get(key) if PREVIEW_ID.match(key) else None
        if found is None:
            raise APIError(
                404, "this preview has expired or never existed; press Preview again", code="preview_not_found"
            )
        return found

    @app.get("/preview/{key}", include_in_schema=False)
    async def preview(key: str) -> Response:
        document, csp = lookup(key)
        return HTMLResponse(
            document,
            headers=COMMON_HEADERS | {"Content-Security-Policy": csp, "Cross-Origin-Resource-Policy": "same-origin"},
        )

    @app.get("/preview/{key}/tab", include_in_schema=False)
    async def preview_tab(key: str, request: Request) -> Response:
        lookup(key)
        origin = page_origin(request.scope)
        return HTMLResponse(
            tab_page(key),
            headers=COMMON_HEADERS
            | {
                "Content-Security-Policy": tab_csp(origin, key),
                "Cross-Origin-Opener-Policy": "same-origin",
                "X-Frame-Options": "DENY",
            },
        )


def studio_available(static_dir: Path = STATIC_DIR) -> bool:
    return (static_dir / "index.html").is_file()


def mount_studio(app: FastAPI, static_dir: Path = STATIC_DIR, api_routes=()) -> bool:
    """Serve the studio at / when it is built; returns whether it was mounted. Call it last:
    a mount at / answers every path no route took."""
    if not studio_available(static_dir):

        @app.get("/", include_in_schema=False)
        async def index() -> dict:
            return {
                "name": "unmask",
                "api": "/v1",
                "native": "/api/diffuse",
                "docs": "/openapi.json",
                "studio": "not installed",
            }

        return False
    app.state.previews = PreviewStore()
    add_preview_routes(app, app.state.previews)
    api_routes = [*api_routes, *(r for r in app.routes if isinstance(r, Route))]
    app.mount("/", StudioFiles(directory=static_dir, html=True, api_routes=api_routes), name="studio")
    return True
