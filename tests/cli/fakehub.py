"""A Hugging Face Hub stand-in on loopback that answers exactly what huggingface_hub 2.x asks.

The requests, read from huggingface_hub/hf_api.py (`model_info`) and file_download.py
(`get_hf_file_metadata`, `http_get`):
- `GET  /api/models/{repo}/revision/{rev}` -> {"id", "sha", "siblings": [{"rfilename", "size"}]}
- `HEAD /{repo}/resolve/{rev}/{path}` -> `ETag`, `X-Repo-Commit`, `Content-Length` (no body)
- `GET  /{repo}/resolve/{rev}/{path}` -> the bytes; `Range: bytes=N-` gets a 206 from N on
Errors carry the hub's `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo),
which is how the library picks its typed exceptions. Every request is logged, and faults can be
switched on per file: drop the connection after N bytes (once), pace the body, or pause it midway
until the test lets it go.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+?)(?:/revision/(?P<rev>[^/]+))?$")
CHUNK = 64 * 1024  # bytes written per send when a body is paced or paused


def commit_of(files: dict[str, bytes]) -> str:
    """A 40-hex commit id that changes whenever any file does."""
    digest = hashlib.sha1()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name])
    return digest.hexdigest()


@dataclass
class Repo:
    files: dict[str, bytes]
    token: str | None = None  # files need `Authorization: Bearer <token>`
    private: bool = False  # with a token: hidden entirely (401 RepoNotFound); without: gated files (401 GatedRepo)
    sha: str = ""

    def __post_init__(self) -> None:
        self.sha = self.sha or commit_of(self.files)


@dataclass
class Request:
    method: str
    path: str
    range: str | None


@dataclass
class Faults:
    drop_after: dict[str, int] = field(default_factory=dict)  # "repo/file" -> bytes, then close (once)
    seconds_per_chunk: dict[str, float] = field(default_factory=dict)  # "repo/file" -> pacing
    pause_after: dict[str, int] = field(default_factory=dict)  # "repo/file" -> bytes, then wait for `release`
    paused: threading.Event = field(default_factory=threading.Event)  # set when a body reached its pause
    release: threading.Event = field(default_factory=threading.Event)


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.log: list[Request] = []
        self.faults = Faults()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.faults.release.set()
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        """Forget the request log and every fault (between tests)."""
        self.faults.release.set()
        with self._lock:
            self.log.clear()
            self.faults = Faults()

    def requests(self, repo_id: str, method: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.log if f"/{repo_id}/" in r.path + "/" and (method is None or r.method == method)]

    def downloaded(self, repo_id: str) -> list[str]:
        """Files whose bytes were requested (GET on resolve), in order."""
        prefix = f"/{repo_id}/resolve/"
        return [
            r.path[len(prefix) :].split("/", 1)[1] for r in self.requests(repo_id, "GET") if r.path.startswith(prefix)
        ]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                self.answer(body=False)

            def do_GET(self) -> None:
                self.answer(body=True)

            def answer(self, body: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                with hub._lock:
                    hub.log.append(Request(self.command, path, self.headers.get("Range")))
                if m := API.match(path):
                    return self.model_info(m["repo"], m["rev"] or "main")
                if m := RESOLVE.match(path):
                    return self.resolve(m["repo"], m["rev"], m["path"], body)
                self.error(404, "RepoNotFound", "not a route of this fake hub")

            def lookup(self, repo_id: str, rev: str, files: bool) -> Repo | None:
                """The repo, or None after answering with the hub's error. As on the real hub, a
                gated repo's metadata is public and only its files need the token."""
                repo = hub.repos.get(repo_id)
                authorized = repo is not None and self.headers.get("Authorization") == f"Bearer {repo.token}"
                if repo is None:
                    self.error(404, "RepoNotFound", f"Repository {repo_id} not found")
                elif repo.token and repo.private and not authorized:
                    self.error(401, "RepoNotFound", "Invalid username or password.")
                elif repo.token and files and not authorized:
                    self.error(401, "GatedRepo", f"Access to model {repo_id} is restricted")
                elif rev not in ("main", repo.sha):
                    self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}", commit=None)
                else:
                    return repo
                return None

            def model_info(self, repo_id: str, rev: str) -> None:
                repo = self.lookup(repo_id, rev, files=False)
                if repo is None:
                    return
                siblings = [{"rfilename": n, "size": len(b)} for n, b in sorted(repo.files.items())]
                payload = {
                    "id": repo_id,
                    "modelId": repo_id,
                    "sha": repo.sha,
                    "private": False,
                    "gated": "manual" if repo.token else False,
                    "siblings": siblings,
                }
                self.send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})

            def resolve(self, repo_id: str, rev: str, name: str, body: bool) -> None:
                repo = self.lookup(repo_id, rev, files=True)
                if repo is None:
                    return
                data = repo.files.get(name)
                if data is None:
                    return self.error(404, "EntryNotFound", f"{name} does not exist", commit=repo.sha)
                headers = {
                    "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                    "X-Repo-Commit": repo.sha,
                    "Accept-Ranges": "bytes",
                    "Content-Type": "application/octet-stream",
                }
                start = 0
                if m := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or ""):
                    start = int(m[1])
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                status = 206 if start else 200
                if not body:
                    return self.send(status, b"", headers | {"Content-Length": str(len(data) - start)}, head=True)
                self.stream(status, headers, data, start, f"{repo_id}/{name}")

            def stream(self, status: int, headers: dict, data: bytes, start: int, key: str) -> None:
                faults = hub.faults
                drop = faults.drop_after.pop(key, None) if start == 0 else None
                pause = faults.pause_after.get(key)
                pace = faults.seconds_per_chunk.get(key, 0.0)
                self.send_response(status)
                for k, v in (headers | {"Content-Length": str(len(data) - start)}).items():
                    self.send_header(k, v)
                self.end_headers()
                sent = start
                try:
                    while sent < len(data):
                        end = min(len(data), sent + CHUNK)
                        if drop is not None:
                            end = min(end, drop)
                        if pause is not None and sent < pause:
                            end = min(end, pause)
                        self.wfile.write(data[sent:end])
                        self.wfile.flush()
                        sent = end
                        if drop is not None and sent >= drop:
                            self.close_connection = True  # the client sees a body cut short
                            return
                        if pause is not None and sent == pause:
                            faults.paused.set()
                            faults.release.wait(timeout=30)
                        if pace:
                            time.sleep(pace)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def error(self, status: int, code: str, message: str, commit: str | None = None) -> None:
                headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
                if commit:
                    headers["X-Repo-Commit"] = commit
                self.send(status, json.dumps({"error": message}).encode(), headers)

            def send(self, status: int, payload: bytes, headers: dict, head: bool = False) -> None:
                self.send_response(status)
                headers = {"Content-Length": str(len(payload))} | headers
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if not head and self.command != "HEAD":
                    self.wfile.write(payload)

        return Handler
