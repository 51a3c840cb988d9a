"""POST /api/pull with the official `ollama` client against a real server and the fake hub of the
CLI tests (tests/cli/fakehub.py, a private HF cache): Ollama's statuses in order, the pulled model
listed and generating at once, refusals before any weight request with real statuses in Ollama's
error shape, strict bodies, a client that leaves mid-download (the cache stays whole), and the
digest check behind "verifying sha256 digest"."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from contextlib import ExitStack

import httpx
import ollama
import pytest

from unmask.pulling import PullError, matches_etag, verify_file

from ..cli import conftest as cli_fixtures
from ..cli import test_pull_fit as fit
from ..cli.conftest import go_offline, point_at
from ..cli.fakehub import Repo
from ..conftest import GOLDEN

TINY = "fake-org/llada-tiny"
WANTED = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"}
OPTIONS = {"num_predict": 8, "steps": 8, "seed": 1}

# The CLI tests' fixtures: the fake hub (session), and per test an empty HF cache pointed at it.

fake_hub, hub = cli_fixtures.fake_hub, cli_fixtures.hub
gemma_hub = fit.gemma_hub  # the fake hub serving DiffusionGemma 26B-A4B's config


@pytest.fixture
def server(hub, start_server):
    """A server that serves the embedded and the downloaded models (no UNMASK_MODELS)."""
    return start_server(models=None)


@pytest.fixture
def client(server):
    return ollama.Client(host=server.url, timeout=60)


def listed(client) -> list[str]:
    return [m.model for m in client.list().models]


def repo_folder(hub, repo_id: str):
    return hub.cache / ("models--" + repo_id.replace("/", "--"))


def weight_requests(hub, repo_id: str) -> list:
    return [r for r in hub.requests(repo_id) if r.path.endswith(".safetensors")]


def refused(call) -> ollama.ResponseError:
    with pytest.raises(ollama.ResponseError) as caught:
        result = call()
        if not isinstance(result, ollama.ProgressResponse):
            list(result)  # a stream answers when it is read
    return caught.value


# --------------------------------------------------------------------------------------------- pulls


def test_a_pull_streams_ollamas_statuses_and_the_model_is_then_listed_and_generates(hub, client):
    assert TINY not in listed(client)  # also fills the server's hub scan, which the pull must refresh
    parts = list(client.pull(TINY, stream=True))
    statuses = [p.status for p in parts]
    assert statuses[0] == "pulling manifest"
    assert statuses[1].startswith(f"{TINY}: ") and "to download; needs about" in statuses[1], statuses[1]
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]

    files = parts[2:-3]
    assert all(p.digest and p.status == f"pulling {p.digest}" for p in files)
    order = [p.digest for i, p in enumerate(files) if i == 0 or files[i - 1].digest != p.digest]
    assert sorted(order) == sorted(WANTED), "each file's lines come in one run"
    for name in WANTED:
        lines = [p for p in files if p.digest == name]
        size = len(hub.repos[TINY].files[name])
        assert all(p.total == size and 0 <= p.completed <= p.total for p in lines)
        assert [p.completed for p in lines] == sorted(p.completed for p in lines), "completed went backwards"
        assert lines[0].completed == 0 and lines[-1].completed == size
    assert set(hub.downloaded(TINY)) == WANTED  # never the pickle, the code or the subfolder
    assert (repo_folder(hub, TINY) / "refs" / "main").is_file()

    assert TINY in listed(client)
    answer = client.generate(model=TINY, prompt="the fox", options=OPTIONS, stream=False)
    assert answer.done and answer.eval_count > 0


def test_stream_false_answers_success_once_done_and_a_second_pull_downloads_nothing(hub, client):
    repo = "fake-org/llada-sharded"
    assert client.pull(repo, stream=False).status == "success"
    shards = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"}
    assert shards <= set(hub.downloaded(repo))
    assert repo in listed(client)

    hub.reset()
    statuses = [p.status for p in client.pull(repo, stream=True)]
    assert statuses[1].startswith(f"{repo}: nothing left to download"), statuses
    assert statuses[-1] == "success" and hub.downloaded(repo) == []


def test_an_alias_and_a_latest_tag_name_the_hub_repo(hub, client):
    assert client.pull("llada:latest", stream=False).status == "success"
    assert set(hub.downloaded("GSAI-ML/LLaDA-8B-Instruct")) == WANTED


def test_a_served_model_that_needs_no_download_is_a_success_at_once(hub, client):
    parts = list(client.pull("tiny", stream=True))  # the server's default model: a folder
    assert [p.status for p in parts] == ["tiny is served from this machine; nothing to download", "success"]
    assert client.pull("story", stream=False).status == "success"  # embedded
    assert hub.log == []


# --------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("stream", [True, False])
def test_an_unsupported_architecture_is_a_400_naming_it_before_any_weight_request(hub, client, stream):
    err = refused(lambda: client.pull("fake-org/gpt2-tiny", stream=stream))
    assert err.status_code == 400 and "'gpt2'" in err.error and err.error.endswith("nothing was downloaded")
    assert weight_requests(hub, "fake-org/gpt2-tiny") == []
    assert not repo_folder(hub, "fake-org/gpt2-tiny").exists(), "a refused pull must leave the cache untouched"


def test_an_unsupported_value_is_a_400_naming_key_and_value_before_any_weight_request(hub, client, monkeypatch):
    repo = "fake-org/llada-sequential"
    config = json.loads((GOLDEN / "llada-tiny" / "config.json").read_text()) | {"block_type": "sequential"}
    weights = (GOLDEN / "llada-tiny" / "model.safetensors").read_bytes()
    monkeypatch.setitem(
        hub.repos, repo, Repo({"config.json": json.dumps(config).encode(), "model.safetensors": weights})
    )
    err = refused(lambda: client.pull(repo, stream=True))
    assert err.status_code == 400 and "block_type: only 'llama'" in err.error and "got 'sequential'" in err.error
    assert weight_requests(hub, repo) == [] and hub.downloaded(repo) == ["config.json"]


@pytest.mark.parametrize(
    "repo, status, says",
    [
        ("fake-org/no-such-model", 404, "fake-org/no-such-model was not found on the hub"),
        ("fake-org/gated-llada", 403, "fake-org/gated-llada is gated"),
        ("fake-org/private-llada", 403, "does not exist or is private"),
        ("fake-org/pickle-only", 400, "has only pickle weights (pytorch_model.bin)"),
        ("fake-org/llada-tiny:no-such-branch", 404, "has no such revision"),
    ],
)
def test_hub_refusals_are_real_statuses_in_ollamas_error_shape(hub, server, client, repo, status, says):
    with server.client() as http:
        r = http.post("/api/pull", json={"model": repo})
    assert r.status_code == status and list(r.json()) == ["error"] and says in r.json()["error"], r.text
    err = refused(lambda: client.pull(repo, stream=True))
    assert err.status_code == status and says in err.error
    assert weight_requests(hub, repo.split(":")[0]) == []


def test_offline_without_a_copy_is_a_409_and_an_unreachable_hub_a_502(hub, client, monkeypatch):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    point_at(monkeypatch, dead)
    err = refused(lambda: client.pull(TINY, stream=False))
    assert err.status_code == 502 and err.error.startswith(f"cannot reach the hub at {dead}")
    go_offline(monkeypatch)
    err = refused(lambda: client.pull(TINY, stream=True))
    assert err.status_code == 409 and "HF_HUB_OFFLINE is set" in err.error


BAD_BODIES = [
    ("{}", "model"),
    ('{"model": 7}', "model"),
    ('{"model": ""}', "model"),
    ('{"model": "' + "a" * 300 + '"}', "model"),
    ('{"name": ["fake-org/llada-tiny"]}', "name"),
    ('{"model": "fake-org/llada-tiny", "stream": "yes"}', "stream"),
    ('{"model": "fake-org/llada-tiny", "insecure": 1}', "insecure"),
    ('{"model": "fake-org/llada-tiny", "username": "me"}', "username"),
    ('{"model": "fake-org/llada\\ud800"}', "model"),
    ('{"model": "no slash"}', "model"),
    ('{"model": "../etc/passwd"}', "model"),
    ('{"model": "fake-org/a b"}', "model"),
    ("[1, 2]", "body"),
    ("not json", "body"),
]


def test_bad_bodies_are_400s_naming_the_field(hub, server):
    wrong = []
    with server.client() as http:
        for body, field in BAD_BODIES:
            r = http.post("/api/pull", content=body, headers={"Content-Type": "application/json"})
            error = r.json().get("error") if r.status_code == 400 else None
            if not (isinstance(error, str) and error.startswith(f"{field}: ")):
                wrong.append(f"{body[:60]} -> {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert hub.log == [], "a refused body must not reach the hub"


def test_the_older_name_field_pulls_too(hub, server):
    with server.client() as http:
        r = http.post("/api/pull", json={"name": TINY, "stream": False, "insecure": True})
    assert r.status_code == 200 and r.json() == {"status": "success"}


def test_with_fixed_models_only_the_served_ones_are_pulled(hub, start_server):
    fixed = start_server(models=[f"mine={TINY}"])
    client = ollama.Client(host=fixed.url, timeout=60)
    err = refused(lambda: client.pull("fake-org/llada-sharded", stream=False))
    assert err.status_code == 403 and "is not served here" in err.error and "UNMASK_MODELS" in err.error
    assert hub.log == []
    assert client.pull("mine", stream=False).status == "success"  # the served name pulls its repo
    assert set(hub.downloaded(TINY)) == WANTED
    assert client.generate(model="mine", prompt="the fox", options=OPTIONS, stream=False).done


# --------------------------------------------------------------------------------------------- leaving


def wait_until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_client_that_leaves_stops_the_download_and_the_cache_stays_whole(hub, server, client):
    hub.faults.pause_after[f"{TINY}/model.safetensors"] = 100_000
    with httpx.Client(base_url=server.url, timeout=30) as http:
        with http.stream("POST", "/api/pull", json={"model": TINY}) as r:
            assert r.status_code == 200
            lines = r.iter_lines()  # held: dropping the iterator would close the response at once
            assert any(json.loads(line).get("digest") == "model.safetensors" for line in lines)
            assert hub.faults.paused.wait(30), "the download never reached the middle of model.safetensors"
    pulls = server.app.state.pulls
    assert pulls.running, "the download thread is waiting on the hub"
    wait_until(lambda: all(relay.stopped.is_set() for relay in pulls.running.values()))
    threads = list(pulls.running)
    hub.faults.release.set()
    for thread in threads:
        thread.join(30)
    assert not pulls.running

    folder = repo_folder(hub, TINY)
    assert not list(folder.glob("blobs/*.incomplete")), "a partial file was left behind"
    assert not (folder / "refs" / "main").exists(), "the ref must only be written once every file is in"
    assert TINY not in listed(client)

    hub.reset()
    assert client.pull(TINY, stream=False).status == "success"
    assert hub.downloaded(TINY) == ["model.safetensors"], "finished files are kept"
    assert TINY in listed(client)


def test_a_third_pull_at_once_is_a_429_and_the_two_running_finish(hub, server):
    sharded = "fake-org/llada-sharded"
    hub.faults.pause_after[f"{TINY}/model.safetensors"] = 100_000
    hub.faults.pause_after[f"{sharded}/model-00001-of-00002.safetensors"] = 100_000
    with httpx.Client(base_url=server.url, timeout=30) as http, ExitStack() as streams:
        running = [streams.enter_context(http.stream("POST", "/api/pull", json={"model": m})) for m in (TINY, sharded)]
        assert [r.status_code for r in running] == [200, 200]
        third = http.post("/api/pull", json={"model": "fake-org/llada-big"})
        assert third.status_code == 429 and third.headers["retry-after"] == "10", third.text
        assert list(third.json()) == ["error"] and "pulls are running on this server" in third.json()["error"]
        hub.faults.release.set()
        for r in running:
            assert json.loads(list(r.iter_lines())[-1]) == {"status": "success"}
    assert hub.requests("fake-org/llada-big") == [], "a refused pull must not reach the hub"


# --------------------------------------------------------------------------------------------- digests


def test_verifying_hashes_lfs_files_with_sha256_and_git_files_as_git_blobs(tmp_path):
    lfs = tmp_path / hashlib.sha256(b"weights").hexdigest()
    lfs.write_bytes(b"weights")
    git = tmp_path / "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object` of "hello\n"
    git.write_bytes(b"hello\n")
    assert matches_etag(lfs, lfs.name) and matches_etag(git, git.name)
    assert matches_etag(git, "0" * 40) is False and matches_etag(git, "model.safetensors") is None

    blob = tmp_path / ("1" * 64)
    blob.write_bytes(b"corrupted")
    link = tmp_path / "model.safetensors"
    link.symlink_to(blob)
    with pytest.raises(PullError) as caught:
        verify_file("org/repo", "model.safetensors", link)
    assert caught.value.status == 502 and "does not match the hub's digest" in caught.value.message
    assert not blob.exists() and not link.exists(), "the next pull must fetch it again"
    verify_file("org/repo", "lfs", lfs)  # a match: nothing happens
    assert lfs.exists()


def test_a_model_the_server_cannot_hold_is_refused_before_any_weight(gemma_hub, server, monkeypatch):
    """The server loads what it pulls: on a machine with 24 GB free, DiffusionGemma 26B-A4B in
    bfloat16 is a 400 that names the quantization that fits, and no weight is requested."""
    fit.machine(monkeypatch, 24)
    error = refused(lambda: ollama.Client(host=server.url, timeout=60).pull("diffusiongemma"))
    assert error.status_code == 400 and "try --quantize int4" in error.error, error.error
    assert not weight_requests(gemma_hub, fit.REPO) and not repo_folder(gemma_hub, fit.REPO).exists()
