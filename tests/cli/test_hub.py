"""`unmask pull / list / show / rm` against a real HTTP fake hub on loopback (see fakehub.py).

Most tests run the CLI in-process with typer's runner; the progress bar and Ctrl-C are checked in
real subprocesses (the bar on a pseudo-terminal, where rich draws it live).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import pty
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from safetensors import safe_open
from typer.testing import CliRunner

import unmask
from unmask import checkpoints
from unmask.cli import app
from unmask.cli.hub import human_size

from ..conftest import GOLDEN
from .conftest import DEFAULTS, TOKEN, go_offline, point_at
from .fakehub import Repo

TINY = "fake-org/llada-tiny"
# What unmask reads of a repo; everything else the fake hub serves (pickles, code, README,
# subfolders) must never be requested.
WANTED = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"}
CLI = [sys.executable, "-c", "from unmask.cli import main; main()"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def cli(*args: str, input: str | None = None):
    result = CliRunner().invoke(app, list(args), input=input)
    result.text = result.stdout + result.stderr
    return result


def ok(*args: str):
    result = cli(*args)
    assert result.exit_code == 0, result.text
    return result


def failed(*args: str, input: str | None = None) -> str:
    """Run a verb that must fail; returns its one-line error (and checks there is no traceback)."""
    result = cli(*args, input=input)
    assert result.exit_code != 0, result.text
    assert isinstance(result.exception, SystemExit), result.exception  # an exit, not a crash
    assert "Traceback" not in result.text
    return " ".join(result.stderr.split())


def parameter_count(folder: Path) -> int:
    """Counted the slow, independent way: safetensors' own reader."""
    total = 0
    for file in folder.glob("model*.safetensors"):
        with safe_open(str(file), "pt") as f:
            total += sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())
    return total


def repo_folder(hub, repo_id: str) -> Path:
    return hub.cache / ("models--" + repo_id.replace("/", "--"))


def golden_repo(name: str, **config) -> Repo:
    """A golden tiny checkpoint as a hub repo, its config.json with `config` set over the shipped one."""
    shipped = json.loads((GOLDEN / name / "config.json").read_text())
    return Repo(
        {
            "config.json": json.dumps(shipped | config).encode(),
            "model.safetensors": (GOLDEN / name / "model.safetensors").read_bytes(),
        }
    )


# A supported model_type with a value unmask does not run: (repo, golden checkpoint, config values, the key).
UNSUPPORTED_VALUES = [
    ("fake-org/dream-rope-scaling", "dream-tiny", {"rope_scaling": {"type": "linear", "factor": 2.0}}, "rope_scaling"),
    ("fake-org/dream-gelu", "dream-tiny", {"hidden_act": "gelu"}, "hidden_act"),
    ("fake-org/llada-sequential", "llada-tiny", {"block_type": "sequential"}, "block_type"),
    ("fake-org/sdar-gelu", "sdar-tiny", {"hidden_act": "gelu"}, "hidden_act"),
    ("fake-org/llada2-softmax", "llada2-tiny", {"score_function": "softmax"}, "score_function"),
    (
        "fake-org/fast-dllm-v2-yarn",
        "fastdllm2-tiny",
        {"rope_scaling": {"type": "yarn", "factor": 4.0}},
        "rope_scaling",
    ),
]


def subprocess_env(hub) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    return env | {
        "HF_ENDPOINT": hub.url,
        "HF_HUB_CACHE": str(hub.cache),
        "HF_HOME": str(hub.cache.parent),
        "COLUMNS": "120",
    }


# --------------------------------------------------------------------------------------------- pull


@pytest.mark.slow
def test_pull_fetches_only_what_unmask_reads_and_the_model_then_loads_offline(hub, monkeypatch):
    out = ok("pull", TINY)
    assert re.search(r"pulled fake-org/llada-tiny \(\d+\.\d kB, 5 files\) -> .*snapshots", out.stdout), out.stdout
    assert set(hub.downloaded(TINY)) == WANTED
    assert "model.safetensors" in out.stderr and "100%" in out.stderr  # plain progress lines off a terminal

    go_offline(monkeypatch)
    seen = len(hub.log)
    model = unmask.load(TINY)
    assert len(hub.log) == seen, "loading from the cache must not touch the network"
    assert model.family == "llada" and model.ids.mask == 250 and 245 in model.ids.eos
    assert model.tokenizer is not None and model.tokenizer.chat_template
    assert model.logits([[1, 2, 3]]).shape == (1, 3, 256)


def test_pull_again_is_up_to_date_without_downloading(hub):
    ok("pull", TINY)
    hub.reset()
    out = ok("pull", TINY)
    assert out.stdout.startswith("already up to date: fake-org/llada-tiny")
    assert hub.downloaded(TINY) == []


def test_pull_sharded_checkpoint_follows_the_index(hub, monkeypatch):
    ok("pull", "fake-org/llada-sharded")
    got = hub.downloaded("fake-org/llada-sharded")
    assert {
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    } <= set(got)
    assert not any(name.endswith((".bin", ".py", ".md")) for name in got)
    go_offline(monkeypatch)
    assert unmask.load("fake-org/llada-sharded").num_parameters == parameter_count(GOLDEN / "llada-tiny")


def test_alias_names_the_hub_repo(hub):
    assert unmask.loading.ALIASES is checkpoints.ALIASES  # one table, which `pull --help` reads without torch
    out = ok("pull", "llada")
    assert "GSAI-ML/LLaDA-8B-Instruct" in out.stdout
    assert set(hub.downloaded("GSAI-ML/LLaDA-8B-Instruct")) == WANTED
    assert "GSAI-ML/LLaDA-8B-Instruct" in ok("show", "llada").stdout


@pytest.mark.parametrize(
    "alias, repo_id, golden",
    [
        ("sdar", "JetLM/SDAR-1.7B-Chat", "sdar-tiny"),
        ("llada2.1-mini", "inclusionAI/LLaDA2.1-mini", "llada2-tiny"),
        ("fast-dllm-v2", "Efficient-Large-Model/Fast_dLLM_v2_7B", "fastdllm2-tiny"),
        ("llada-moe", "inclusionAI/LLaDA-MoE-7B-A1B-Instruct", "lladamoe-tiny"),
    ],
)
def test_the_2026_family_names_pull_their_hub_repos(hub, monkeypatch, alias, repo_id, golden):
    monkeypatch.setitem(hub.repos, repo_id, golden_repo(golden))
    out = ok("pull", alias)
    assert repo_id in out.stdout and "model.safetensors" in hub.downloaded(repo_id)
    assert unmask.load(alias).num_parameters > 0


def test_unsupported_architecture_is_refused_before_any_weight_request(hub):
    message = failed("pull", "fake-org/gpt2-tiny")
    assert (
        "'gpt2'" in message
        and all(t in message for t in ("dream, ", "llada, ", "sdar"))
        and "nothing was downloaded" in message
    )
    assert hub.downloaded("fake-org/gpt2-tiny") == ["config.json"]
    assert not repo_folder(hub, "fake-org/gpt2-tiny").exists(), "a refused pull must leave the cache untouched"


@pytest.mark.parametrize("repo_id, golden, values, key", UNSUPPORTED_VALUES)
def test_a_supported_architecture_with_an_unsupported_value_is_refused_before_any_weight_request(
    hub, monkeypatch, repo_id, golden, values, key
):
    monkeypatch.setitem(hub.repos, repo_id, golden_repo(golden, **values))
    result = cli("pull", repo_id)
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.text
    assert "Traceback" not in result.text and result.stdout == ""
    message = " ".join(result.stderr.split())  # one sentence (rich wraps it at the console's width)
    assert message.startswith(f"error: {repo_id}: unmask cannot run this ") and message.count("error:") == 1
    assert f"{key}: only " in message and message.endswith("; nothing was downloaded"), message
    assert not [r for r in hub.requests(repo_id) if r.path.endswith(".safetensors")], "a weight was requested"
    assert hub.downloaded(repo_id) == ["config.json"]
    assert not repo_folder(hub, repo_id).exists(), "a refused pull must leave the cache untouched"


def test_pull_says_the_size_and_the_memory_before_downloading(hub):
    result = cli("pull", TINY)
    assert result.exit_code == 0, result.text
    plan = next(line for line in result.stderr.splitlines() if line.startswith(f"{TINY}: "))
    size = sum(len(hub.repos[TINY].files[n]) for n in WANTED)
    needs = checkpoints.config_memory_needs(json.loads(hub.repos[TINY].files["config.json"]))
    about = {mode: human_size(need.total) for mode, need in needs.items()}
    assert plan == (
        f"{TINY}: {human_size(size)} to download; needs about {about['bfloat16']} of memory in bfloat16 "
        f"(int8 about {about['int8']}, int4 about {about['int4']})"
    )
    # Said before the first weight byte: ahead of the weights' progress line, stdout and stderr interleaved.
    assert result.output.index(plan) < result.output.index("model.safetensors")
    # From config.json alone, the same figures `show` computes from the weight headers once pulled.
    assert {m: n["total"] for m, n in json.loads(ok("show", TINY, "--json").stdout)["memory"].items()} == {
        mode: need.total for mode, need in needs.items()
    }

    hub.reset()
    again = ok("pull", TINY)
    assert f"{TINY}: nothing left to download ({human_size(size)} in the cache); needs about" in again.stderr


def test_pull_after_a_partial_download_says_what_is_left(hub):
    from huggingface_hub import hf_hub_download

    files = hub.repos[TINY].files
    hf_hub_download(TINY, "tokenizer.json")  # a pull that stopped after its first file
    out = ok("pull", TINY)
    total = sum(len(files[n]) for n in WANTED)
    left = total - len(files["tokenizer.json"])
    assert f"{TINY}: {human_size(left)} of {human_size(total)} left to download;" in out.stderr
    assert "tokenizer.json" not in hub.downloaded(TINY)[1:]


def test_shard_sizes_the_listing_lacks_come_from_the_index_total_size():
    from unmask.pulling import file_sizes

    names = ["config.json", "model-1.safetensors", "model-2.safetensors", "model.safetensors.index.json"]
    listing = {"config.json": 10, "model-1.safetensors": 600, "model-2.safetensors": None}
    index = {"metadata": {"total_size": 1000}, "weight_map": {}}
    assert file_sizes(names, listing, index) == {
        "config.json": 10,
        "model-1.safetensors": 600,
        "model-2.safetensors": 400,
        "model.safetensors.index.json": 0,
    }
    assert file_sizes(names, listing, None)["model-2.safetensors"] == 0


def test_pickle_only_repo_is_refused_before_downloading_weights(hub):
    message = failed("pull", "fake-org/pickle-only")
    assert "only pickle weights (pytorch_model.bin)" in message and "safetensors only" in message
    assert "pytorch_model.bin" not in hub.downloaded("fake-org/pickle-only")


def test_unknown_repo(hub):
    message = failed("pull", "fake-org/no-such-model")
    assert message == "error: fake-org/no-such-model was not found on the hub (" + hub.url + "); check the id"


def test_gated_repo_asks_for_hf_token_and_uses_it(hub, monkeypatch):
    message = failed("pull", "fake-org/gated-llada")
    assert "gated" in message and "HF_TOKEN" in message
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    ok("pull", "fake-org/gated-llada")
    assert set(hub.downloaded("fake-org/gated-llada")) == WANTED


def test_private_repo_without_a_token(hub, monkeypatch):
    message = failed("pull", "fake-org/private-llada")
    assert "(401)" in message and "does not exist or is private" in message and "HF_TOKEN" in message
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    ok("pull", "fake-org/private-llada")


def test_offline_without_a_cached_copy(hub, monkeypatch):
    go_offline(monkeypatch)
    message = failed("pull", TINY)
    assert message.startswith("error: cannot reach the hub: HF_HUB_OFFLINE is set")
    assert hub.log == []


def test_offline_with_a_cached_copy(hub, monkeypatch):
    ok("pull", TINY)
    go_offline(monkeypatch)
    assert "already downloaded" in ok("pull", TINY).stdout


def test_no_network(hub, monkeypatch):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    point_at(monkeypatch, dead)
    message = failed("pull", TINY)
    assert message.startswith(f"error: cannot reach the hub at {dead}") and "unmask list" in message


def test_pull_refuses_embedded_names_folders_and_unknown_words(hub, embedded):
    assert "embedded in unmask and needs no download" in failed("pull", "story")
    assert "local folder" in failed("pull", str(GOLDEN / "llada-tiny"))
    assert "unknown model 'nonsense'" in failed("pull", "nonsense")


@pytest.mark.slow
def test_progress_never_goes_backwards_and_a_dropped_connection_resumes_with_a_range(hub):
    """On a pseudo-terminal, as a person sees it: the server cuts model.safetensors after 1.5
    read chunks; the library retries from the last whole chunk with `Range` and the bar holds."""
    from huggingface_hub.constants import DOWNLOAD_CHUNK_SIZE

    repo = "fake-org/llada-big"
    data = hub.repos[repo].files["model.safetensors"]
    assert len(data) > 2 * DOWNLOAD_CHUNK_SIZE
    hub.faults.drop_after[f"{repo}/model.safetensors"] = DOWNLOAD_CHUNK_SIZE * 3 // 2
    hub.faults.seconds_per_chunk[f"{repo}/model.safetensors"] = 0.002

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    proc = subprocess.Popen(
        [*CLI, "pull", repo], stdin=terminal, stdout=terminal, stderr=terminal, env=subprocess_env(hub), close_fds=True
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert proc.wait(timeout=60) == 0, b"".join(chunks).decode(errors="replace")
    screen = ANSI.sub("", b"".join(chunks).decode(errors="replace"))

    gets = [r for r in hub.requests(repo, "GET") if r.path.endswith("/model.safetensors")]
    assert [r.range for r in gets] == [None, f"bytes={DOWNLOAD_CHUNK_SIZE}-"]
    percents = [int(p) for p in re.findall(r"model\.safetensors\s+\S*\s*(\d+)%", screen)]
    assert percents and percents[-1] == 100, screen
    assert any(0 < p < 100 for p in percents), screen
    assert percents == sorted(percents), f"the bar went backwards: {percents}"
    blob = next(repo_folder(hub, repo).glob("snapshots/*/model.safetensors"))
    assert hashlib.sha256(blob.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert f"pulled {repo}" in screen
    assert "%|" not in screen, "huggingface_hub's own tqdm bars must not show beside ours"


@pytest.mark.slow
def test_ctrl_c_keeps_finished_files_and_the_next_pull_fetches_only_the_rest(hub):
    key = f"{TINY}/model.safetensors"
    hub.faults.pause_after[key] = 100_000
    # As in a terminal: a background job started by a non-interactive shell (nohup ... &) inherits
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler at all.
    proc = subprocess.Popen(
        [*CLI, "pull", TINY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(hub),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert hub.faults.paused.wait(timeout=60), "the download never reached model.safetensors"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
        hub.faults.release.set()
    assert proc.returncode == 130, stderr.decode()
    assert b"interrupted; run `unmask pull fake-org/llada-tiny` again to continue" in stderr
    assert b"Traceback" not in stderr
    assert not list(repo_folder(hub, TINY).glob("blobs/*.incomplete"))
    # The ref is written last, so a half-pulled model is not mistaken for a whole one.
    assert "not downloaded yet" in failed("show", TINY)

    hub.reset()
    ok("pull", TINY)
    assert hub.downloaded(TINY) == ["model.safetensors"]


def test_bar_holds_when_the_library_takes_bytes_back():
    """huggingface_hub rolls its counter back (update(-n)) when a server answers a Range request
    with the whole file; the bar on screen must hold rather than jump back."""
    from io import StringIO

    from rich.console import Console

    from unmask.cli.pull import PullView

    screen = StringIO()
    with PullView(Console(file=screen, force_terminal=True, width=120), ["model.safetensors"]) as view:
        view.start_file("model.safetensors", 1000)
        bar = view.bar_class()(total=1000, initial=0)
        for step in (400, -400, 300, 300, 400):  # 40%, cut, full restart from 0, ..., 100%
            bar.update(step)
            view.progress.refresh()
        view.finish_file()
    percents = [int(p) for p in re.findall(r"model\.safetensors\s+\S*\s*(\d+)%", ANSI.sub("", screen.getvalue()))]
    assert 40 in percents and percents[-1] == 100
    assert percents == sorted(percents), f"the bar went backwards: {percents}"


# --------------------------------------------------------------------------------------------- list


def test_list_shows_embedded_and_cached_models_with_config(hub, embedded):
    from huggingface_hub import hf_hub_download

    ok("pull", TINY)
    hf_hub_download("fake-org/gpt2-tiny", "config.json")  # someone else's model in the same cache
    hf_hub_download("fake-org/just-a-tokenizer", "tokenizer.json")  # no config.json: not a model

    rows = json.loads(ok("list", "--json").stdout)
    assert [r["name"] for r in rows] == ["story", "fake-org/gpt2-tiny", TINY]
    story, gpt2, tiny = rows
    expected = parameter_count(GOLDEN / "llada-tiny")
    assert story | {"path": None} == {
        "name": "story",
        "source": "embedded",
        "path": None,
        "architecture": "llada",
        "supported": True,
        "reason": None,
        "complete": True,
        "parameters": expected,
        "dtype": "float32",
        "size": story["size"],
    }
    assert (
        tiny["parameters"] == expected and tiny["source"] == "hub" and Path(tiny["path"], "model.safetensors").is_file()
    )
    assert tiny["size"] == sum(len(hub.repos[TINY].files[n]) for n in WANTED)
    assert gpt2["architecture"] == "gpt2" and not gpt2["supported"] and not gpt2["complete"]
    assert "'gpt2'" in gpt2["reason"] and tiny["reason"] is None

    lines = ok("list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "ARCH", "PARAMS", "SIZE", "LOCATION"]
    assert lines[1].split()[:3] == ["story", "llada", f"{expected / 1e3:.2f}K"]
    assert "gpt2 (unsupported)" in lines[2] and "(incomplete)" in lines[2]
    assert lines[3].startswith(TINY)
    assert lines[4:] == ["", f"fake-org/gpt2-tiny is not supported: {gpt2['reason']}"]


@pytest.mark.parametrize("repo_id, golden, values, key", UNSUPPORTED_VALUES)
def test_list_and_show_mark_a_cached_model_with_an_unsupported_value_unsupported_and_say_why(
    hub, monkeypatch, repo_id, golden, values, key
):
    from huggingface_hub import hf_hub_download

    monkeypatch.setitem(hub.repos, repo_id, golden_repo(golden, **values))
    for name in ("config.json", "model.safetensors"):  # put there by another tool: `pull` refuses it
        hf_hub_download(repo_id, name)

    (entry,) = [r for r in json.loads(ok("list", "--json").stdout) if r["name"] == repo_id]
    assert entry["supported"] is False and entry["complete"] is True
    assert entry["reason"].startswith("unmask cannot run this ") and f"({key}: only " in entry["reason"], entry
    assert f"{repo_id} is not supported: {entry['reason']}" in ok("list").stdout.splitlines()

    out = ok("show", repo_id).stdout
    assert field(out, "architecture") == f"{entry['architecture']}, not supported: {entry['reason']}"
    message = failed("run", repo_id, "-n", "4")
    assert key in message, message  # the loader refuses it for the same reason


def test_list_with_nothing(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(unmask.loading, "WEIGHTS_DIR", tmp_path / "none")
    out = ok("list")
    assert out.stdout == "" and "unmask pull" in out.stderr
    assert json.loads(ok("list", "--json").stdout) == []


# --------------------------------------------------------------------------------------------- show


def field(out: str, key: str) -> str:
    line = next(line for line in out.splitlines() if line.startswith(key + " "))
    return line[len(key) :].strip()


def test_show_a_pulled_model(hub):
    ok("pull", TINY)
    out = ok("show", TINY).stdout
    assert field(out, "architecture") == "llada"
    assert field(out, "parameters").endswith(f"({parameter_count(GOLDEN / 'llada-tiny'):,})")
    assert field(out, "dtype") == "float32" and field(out, "context length") == "4096"
    assert field(out, "mask id") == "250" and field(out, "eos ids").startswith("245")
    assert field(out, "chat template") == "yes" and field(out, "tokenizer") == "yes"
    assert field(out, "decoding") == "  ".join(f"{k}={v}" for k, v in DEFAULTS.items())
    assert field(out, "source") == "hub cache"
    assert re.search(r"^  model\.safetensors\s+462\.3 kB$", out, re.M), out

    details = json.loads(ok("show", TINY, "--json").stdout)
    assert details["defaults"] == DEFAULTS and details["chat_template"] is True and details["mask_token_id"] == 250


def test_show_memory_per_dtype_and_quantization(embedded):
    details = json.loads(ok("show", "story", "--json").stdout)
    memory = details["memory"]
    assert list(memory) == ["float32", "bfloat16", "int8", "int4"]
    totals = [memory[mode]["total"] for mode in memory]
    assert totals == sorted(totals, reverse=True) and len(set(totals)) == 4, totals  # float32 > ... > int4
    weights = [memory[mode]["weights"] for mode in memory]
    assert weights == sorted(weights, reverse=True) and len(set(weights)) == 4, weights
    for need in memory.values():
        assert need["total"] == need["weights"] + need["cache"] + need["activations"] + need["runtime"]
    assert memory["float32"]["weights"] == 4 * details["parameters"]
    assert memory["bfloat16"]["weights"] == 2 * details["parameters"]
    want = checkpoints.memory_needs(embedded)
    assert {mode: need["total"] for mode, need in memory.items()} == {mode: n.total for mode, n in want.items()}

    out = ok("show", "story").stdout
    for mode in memory:
        assert field(out, f"memory {mode}").startswith(f"{human_size(memory[mode]['total'])} (weights ")


def test_show_embedded_and_folder(embedded):
    out = ok("show", "story").stdout
    assert field(out, "source") == "embedded in unmask" and field(out, "chat template") == "no"
    assert field(out, "decoding") == "none shipped (unmask's defaults apply)"
    out = ok("show", str(GOLDEN / "dream-tiny")).stdout
    assert field(out, "architecture") == "Dream" and field(out, "source") == "local folder"
    assert field(out, "tokenizer") == "no"


def test_show_errors(hub):
    assert "fake-org/elsewhere is not downloaded yet; run `unmask pull fake-org/elsewhere` first" in failed(
        "show", "fake-org/elsewhere"
    )
    assert "unknown model 'nonsense'" in failed("show", "nonsense")


# --------------------------------------------------------------------------------------------- rm


def test_rm_refuses_embedded_models_folders_and_what_is_not_cached(hub, embedded):
    assert "story is embedded in unmask and cannot be removed" in failed("rm", "story", "--yes")
    assert "is a local folder" in failed("rm", str(GOLDEN / "llada-tiny"), "--yes")
    assert "fake-org/llada-tiny is not in the hub cache" in failed("rm", TINY, "--yes")
    assert embedded.is_dir()


def test_rm_asks_first_then_removes_every_revision(hub, monkeypatch):
    repo_id = "fake-org/llada-revisions"
    first = dict(hub.repos[TINY].files)
    monkeypatch.setitem(hub.repos, repo_id, Repo(first))
    ok("pull", repo_id)
    monkeypatch.setitem(hub.repos, repo_id, Repo(first | {"generation_config.json": b'{"unmask": {"steps": 8}}'}))
    ok("pull", repo_id)
    folder = repo_folder(hub, repo_id)
    assert len(list(folder.glob("snapshots/*"))) == 2

    assert "kept fake-org/llada-revisions; nothing was removed" in failed("rm", repo_id, input="n\n")
    assert folder.is_dir()
    out = ok("rm", repo_id, "-y")
    assert out.stdout.startswith("removed fake-org/llada-revisions (")
    assert not folder.exists()
    assert repo_id not in ok("list").stdout


def test_rm_by_alias_after_confirmation(hub):
    ok("pull", "llada")
    result = cli("rm", "llada", input="y\n")
    assert result.exit_code == 0, result.text
    assert "remove GSAI-ML/LLaDA-8B-Instruct" in result.stderr
    assert not repo_folder(hub, "GSAI-ML/LLaDA-8B-Instruct").exists()
