"""The studio in a real browser against a real server.

- `studio`: `create_app` under uvicorn on a free loopback port (a socket bound here and handed to
  uvicorn, so no other process can take the port first), serving the story model (see
  `STORY_MODEL`), a chat model (the same weights with a chat template), a Sudoku grid model and
  `slowstory` (the story weights, loading slowly, to show the loading state).
  Every HTTP request it receives is recorded (method, path, headers, body, start and end time),
  so tests can prove what a page did or did not ask for.
- `browser`: headless Debian Chromium driven by Playwright (`executable_path`, never a
  downloaded browser); `page` is a fresh context and page per test, failing the test on any
  uncaught page error or Content-Security-Policy violation in the studio itself.
- `canary`: an HTTP (and UDP) listener on another loopback port that logs every hit: the place a
  preview payload would exfiltrate to.
- `shoot(page, name)` saves a screenshot to tests/studio/screenshots/.
- Every test here is marked `browser`: `-m "not browser"` leaves them out.
"""

from __future__ import annotations

import json
import os
import shutil
import socketserver
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="the studio tests need playwright (pip install -e .[test])")

from playwright.sync_api import sync_playwright  # noqa: E402

from unmask.loading import WEIGHTS_DIR  # noqa: E402

from ..conftest import loopback_socket, start_uvicorn, train_grid_model  # noqa: E402


def embedded(name: str) -> bool:
    from unmask.loading import embedded_models

    return name in embedded_models()


# The completion model the studio is tested with: the embedded `story` model, or "tiny" (a
# checkpoint trained here in seconds) where it is absent. Any model reference works
# (UNMASK_STUDIO_MODEL=tiny, or a checkpoint folder).
STORY_MODEL = os.environ.get("UNMASK_STUDIO_MODEL", "story" if embedded("story") else "tiny")


def real_sudoku() -> bool:
    """Whether the embedded `sudoku` model is there (else a tiny one is trained for the tests)."""
    return embedded("sudoku")


CHROMIUM = os.environ.get("UNMASK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HERE = Path(__file__).parent
SCREENSHOTS = HERE / "screenshots"
VIEWPORT = {"width": 1360, "height": 880}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items):
    """Every test under tests/studio is `browser` (pytest calls this with the whole session's items)."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def studio_models(tmp_path_factory, tiny_text_model_dir) -> dict[str, str]:
    """name -> reference for the served models: story (completion), chat, sudoku (grid)."""
    from ..test_tokenizer import QWEN2_TEMPLATE

    work = tmp_path_factory.mktemp("studio-models")
    story = str(tiny_text_model_dir) if STORY_MODEL == "tiny" else STORY_MODEL
    chat = work / "chat"
    # No embedded model is an instruct model; the story weights behind a chat template at least
    # answer in words (the tiny random model repeats one token), so the Chat screenshot reads.
    shutil.copytree(WEIGHTS_DIR / "story" if STORY_MODEL == "story" else tiny_text_model_dir, chat)
    config = json.loads((chat / "tokenizer_config.json").read_text())
    (chat / "tokenizer_config.json").write_text(json.dumps(config | {"chat_template": QWEN2_TEMPLATE}))
    sudoku = "sudoku" if real_sudoku() else str(train_grid_model(work / "grid"))
    slow = work / SLOW_MODEL
    shutil.copytree(tiny_text_model_dir, slow)
    return {"story": story, "chat": str(chat), "sudoku": sudoku, "slowstory": str(slow)}


SLOW_MODEL = "slow-story"  # a copy of the tiny model that takes SLOW_LOAD_SECONDS to load
SLOW_LOAD_SECONDS = 1.5


def loader(ref: str):
    """The server's model loader, slow for SLOW_MODEL (to see the loading state)."""
    import unmask

    if str(ref).endswith(SLOW_MODEL):
        time.sleep(SLOW_LOAD_SECONDS)
    return unmask.load(ref)


class Recorder:
    """ASGI wrapper that logs every HTTP request: method, path, headers, body, start and end."""

    def __init__(self, app):
        self.app = app
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        entry = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode(),
            "headers": {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]},
            "body": b"",
            "start": time.monotonic(),
            "end": None,
            "status": None,
        }
        with self.lock:
            self.requests.append(entry)

        async def recv():
            message = await receive()
            if message["type"] == "http.request":
                entry["body"] += message.get("body", b"")
            return message

        async def snd(message):
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            if message["type"] == "http.response.body" and not message.get("more_body"):
                entry["end"] = time.monotonic()
            await send(message)

        await self.app(scope, recv, snd)

    def since(self, mark: int) -> list[dict]:
        with self.lock:
            return list(self.requests[mark:])

    def mark(self) -> int:
        with self.lock:
            return len(self.requests)

    def bodies(self, path: str, mark: int = 0) -> list[dict]:
        return [json.loads(r["body"] or b"{}") for r in self.since(mark) if r["path"] == path and r["method"] == "POST"]


class StudioServer:
    """The studio on a real server; the first of `models` (name -> reference) is the default."""

    def __init__(self, models: dict[str, str], limits=None, **settings):
        import uvicorn

        from unmask.server import Limits, Settings, create_app

        sock = loopback_socket()  # held from here until the server closes it: no one else can take the port
        self.port = sock.getsockname()[1]
        (first, ref), *rest = models.items()
        settings = Settings(
            model=f"{first}={ref}",
            models=[f"{k}={v}" for k, v in rest],
            host="127.0.0.1",
            port=self.port,
            max_queue=32,
            max_batch=8,
            limits=limits or Limits(max_tokens=256, steps=256, context=1024),
            loader=loader,
            **settings,
        )
        self.app = create_app(settings)
        self.recorder = Recorder(self.app)
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.recorder,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=3,
            lifespan="on",
        )
        self.server, self.thread = start_uvicorn(config, "studio test server", sock)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def studio(studio_models):
    server = StudioServer(studio_models)
    yield server
    server.stop()


class Canary:
    """Logs every byte sent to its port: HTTP request lines (any TCP data) and UDP datagrams are
    `hits`. A TCP connection that sends nothing is logged apart, in `idle_connections`: Chromium
    opens one (a preconnect, with no request) when a nested frame starts a navigation that the
    frame's Content-Security-Policy then blocks."""

    def __init__(self):
        self.hits: list[str] = []
        self.idle_connections: list[str] = []
        hits, idle = self.hits, self.idle_connections

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(2)
                try:
                    data = self.request.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    idle.append(f"tcp connection from port {self.client_address[1]}, no bytes")
                    return
                hits.append("tcp " + data.split(b"\r\n", 1)[0].decode("latin-1"))
                if data:
                    self.request.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nAccess-Control-Allow-Origin: *\r\n\r\nok"
                    )

        class UDPHandler(socketserver.BaseRequestHandler):
            def handle(self):
                hits.append(f"udp {len(self.request[0])} bytes")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.port = self.tcp.server_address[1]
        try:
            self.udp = socketserver.ThreadingUDPServer(("127.0.0.1", self.port), UDPHandler)
        except OSError:
            self.udp = None
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (self.tcp, self.udp) if s]
        for t in self.threads:
            t.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        for s in (self.tcp, self.udp):
            if s:
                s.shutdown()
                s.server_close()


@pytest.fixture(scope="session")
def canary():
    c = Canary()
    yield c
    c.stop()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class PageProblems:
    """Uncaught errors and CSP violations of the studio's own document."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", self.console)

    def console(self, msg):
        where = (msg.location or {}).get("url", "")
        if "/preview/" in where:
            return  # a preview's own console: payloads are expected to be refused there
        if msg.type == "error" and ("Content Security Policy" in msg.text or "Uncaught" in msg.text):
            self.errors.append(f"console: {msg.text} ({where})")


@pytest.fixture
def context(browser):
    ctx = browser.new_context(
        viewport=VIEWPORT, color_scheme="dark", accept_downloads=True, reduced_motion="no-preference"
    )
    yield ctx
    ctx.close()


@pytest.fixture
def page(context, studio, request):
    page = context.new_page()
    page.set_default_timeout(30_000)
    problems = PageProblems(page)
    page.goto(studio.url + "/#/diffuse")
    page.wait_for_selector("#server-state.ok")
    yield page
    assert not problems.errors, problems.errors


DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
# The studio's finish tests run on a desktop and on a phone (issue 17 asks for both).
SCREENS = {"params": [DESKTOP, PHONE], "ids": ["1400x900", "390x844"]}


@pytest.fixture(**SCREENS)
def screen(page, request):
    """The page, at a desktop's size and then at a phone's."""
    page.set_viewport_size(request.param)
    return page


def shoot(page, name: str, **kwargs) -> Path:
    """Save a screenshot; one taken on a phone-sized page is NAME-phone.png, so a test run at both
    sizes keeps both pictures."""
    SCREENSHOTS.mkdir(exist_ok=True)
    size = page.viewport_size
    if size and size["width"] <= PHONE["width"] and "phone" not in name:
        name += "-phone"
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), **kwargs)
    return path
