"""Ray, for real: a local Ray instance (loopback, 2 CPUs), `unmask batch --ray` over 200 lines with
two actors (every line once, in order, seeded lines as on the local engine, an actor killed
midway without a line lost or doubled), and `unmask serve --ray --replicas 2` answering the
openai SDK from both replicas with the security defaults in place."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

ray = pytest.importorskip("ray")
from typer.testing import CliRunner  # noqa: E402

from unmask.cli import app  # noqa: E402

from .test_batch import FAST, lines_file, records  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # Ray's own pydantic v1-style fields
]
runner = CliRunner()
ACTOR_TITLE = b"MapBatches(LineActor)"  # Ray Data's actor process title names our class


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def actor_pids() -> set[int]:
    """Processes whose title names our Ray Data actor (started by this test's Ray)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if ACTOR_TITLE in f.read():
                        pids.add(int(entry))
            except OSError:
                continue
    return pids


def test_batch_on_ray_answers_every_line_once_as_the_local_engine_does(cluster, tmp_path):
    path, ids, rows = lines_file(tmp_path)
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert invoke("batch", "story", path, "-o", local, *FAST).exit_code == 0
    result = invoke("batch", "story", path, "-o", on_ray, *FAST, "--ray", "--replicas", 2, "--batch-size", 25)
    assert result.exit_code == 0, result.output
    here, there = records(local), records(on_ray)
    assert [r["id"] for r in there] == ids
    seeded = [k for k, r in enumerate(rows) if "seed" in r or r.get("temperature") == 0.0]
    assert len(seeded) > 80
    for k in seeded:
        assert there[k]["text"] == here[k]["text"] and there[k]["usage"] == here[k]["usage"], rows[k]
        assert there[k]["options"] == here[k]["options"]


def test_a_killed_actor_is_retried_without_losing_or_doubling_a_line(cluster, tmp_path):
    path, ids, rows = lines_file(tmp_path)
    out = tmp_path / "ray.jsonl"
    killed: list[int] = []

    def kill_one_actor() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            pids = actor_pids()
            answered = len(out.read_text().splitlines()) if out.exists() else 0
            if pids and answered >= 1:
                victim = min(pids)
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_actor, daemon=True)
    killer.start()
    # Small batches and longer lines: most of the job is still to run when the first line lands.
    slow = ["-n", "16", "--steps", "8"]
    result = invoke("batch", "story", path, "-o", out, *slow, "--ray", "--replicas", 2, "--batch-size", 10)
    killer.join(5)
    assert killed, "no actor was killed: the job finished first"
    assert result.exit_code == 0, result.output
    got = records(out)
    assert [r["id"] for r in got] == ids, "every line once, in order"
    assert all("text" in r for r in got)
    # Every seeded line, those of the batch run again included, has the text it has alone.
    picked = [k for k, r in enumerate(rows) if "seed" in r]
    alone_in, alone = tmp_path / "alone_in.jsonl", tmp_path / "alone.jsonl"
    alone_in.write_text("".join(json.dumps(rows[k] | {"id": ids[k]}) + "\n" for k in picked))
    assert invoke("batch", "story", alone_in, "-o", alone, *slow, "--max-batch", 1).exit_code == 0
    assert [r["text"] for r in records(alone)] == [got[k]["text"] for k in picked]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_on_ray_spreads_openai_requests_over_two_replicas(cluster):
    import httpx
    import openai

    port = free_port()
    unmask = os.path.join(os.path.dirname(sys.executable), "unmask")
    env = os.environ | {"OMP_NUM_THREADS": "1", "UNMASK_API_KEY": "sekret"}
    proc = subprocess.Popen(
        [unmask, "serve", "story", "--ray-address", cluster, "--replicas", "2", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
        start_new_session=True,
    )
    try:
        ready = proc.stdout.readline()
        assert "serving on Ray" in ready and "2 replicas" in ready, ready
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sekret", max_retries=0)

        def ask(i: int):
            raw = client.chat.completions.with_raw_response.create(
                model="story",
                messages=[{"role": "user", "content": "Once upon a time"}],
                max_tokens=8,
                extra_body={"steps": 4},
            )
            return raw.headers["x-unmask-replica"], raw.parse()

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(24)))
        replicas = {name for name, _ in answers}
        assert len(replicas) == 2, replicas
        assert all(a.choices[0].message.content for _, a in answers)
        # The security defaults are the app's own, on every replica.
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0).models.list()
        rebound = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"Host": "evil.example"})
        assert rebound.status_code == 403
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0
    from ray import serve

    assert "unmask" not in serve.status().applications
