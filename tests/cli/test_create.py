"""Named models: `unmask create NAME -f FILE`, `cp`, `rm`, `list` and `show`, loading by name, the
system prompt in chats, trained models in `list`, and named models on a real server.

Every test gets its own UNMASK_HOME, an empty hub cache and a fresh current directory, so what is
on this machine never shows up in them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

import unmask
from unmask import checkpoints, loading
from unmask.cli import app
from unmask.cli.create import ModelfileError, parse_modelfile
from unmask.engine import chat_or_prompt_ids

from ..conftest import loopback_socket, start_uvicorn

TEMPLATE = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """A private UNMASK_HOME and hub cache, and tmp_path as the current directory."""
    from huggingface_hub import constants

    monkeypatch.setenv("UNMASK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def cli(*args, input: str | None = None):
    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    result.text = result.stdout + result.stderr
    return result


def ok(*args, input: str | None = None):
    result = cli(*args, input=input)
    assert result.exit_code == 0, result.text
    return result


def failed(*args, input: str | None = None) -> str:
    """The one-line error of a verb that must fail (an exit, not a crash)."""
    result = cli(*args, input=input)
    assert result.exit_code != 0, result.text
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.text
    return " ".join(result.stderr.split())


def create(name: str, text: str, file: str = "Modelfile"):
    Path(file).write_text(text)
    return ok("create", name, "-f", file)


def listed() -> dict[str, dict]:
    return {row["name"]: row for row in json.loads(ok("list", "--json").stdout)}


# --------------------------------------------------------------------------------------------- the file


def test_parse_instructions_blocks_quotes_and_comments():
    mf = parse_modelfile(
        "# a comment\n"
        "from story\n"
        "PARAMETER steps 8\n"
        "PARAMETER temperature 0.5\n"
        "PARAMETER stop_at_eos false\n"
        'PARAMETER algorithm "entropy"\n'
        "PARAMETER threshold none\n"
        'SYSTEM """\nYou are brief.\nVery brief.\n"""\n'
        'TEMPLATE """{{ messages[0].content }}"""\n'
    )
    assert mf.base == "story" and mf.base_line == 2
    assert mf.parameters == {
        "steps": 8,
        "temperature": 0.5,
        "stop_at_eos": False,
        "algorithm": "entropy",
        "threshold": None,
    }
    assert type(mf.parameters["temperature"]) is float and mf.lines["temperature"] == 4
    assert mf.system == "You are brief.\nVery brief." and mf.template == "{{ messages[0].content }}"
    assert parse_modelfile('FROM story\nSYSTEM "Be kind."\nPARAMETER cache none').system == "Be kind."
    assert parse_modelfile("FROM story\nPARAMETER cache none").parameters == {"cache": "none"}


@pytest.mark.parametrize(
    "text,line,message",
    [
        ("FROM story\nPARAMETER stepz 8\n", 2, "PARAMETER stepz: not a decoding option"),
        ("FROM story\n\nPARAMETER steps 0\n", 3, "PARAMETER steps: Input should be greater than or equal to 1"),
        ("FROM story\nPARAMETER steps 8.5\n", 2, "PARAMETER steps: Input should be a valid integer"),
        ("FROM story\nPARAMETER algorithm greedy\n", 2, "PARAMETER algorithm:"),
        ("FROM story\nPARAMETER cache nothing\n", 2, "PARAMETER cache:"),
        ("FROM story\nPARAMETER steps\n", 2, "PARAMETER steps needs a value"),
        ("FROM story\nPARAMETER steps 8\nPARAMETER steps 9\n", 3, "given twice (first on line 2)"),
        ("# nothing\nPARAMETER steps 8\n", 1, "no FROM line"),
        ("FROM story\nFROM sudoku\n", 2, "FROM given twice"),
        ("FROM story\nADAPTER x\n", 2, "unknown instruction 'ADAPTER'"),
        ('FROM story\nSYSTEM """never closed\nmore\n', 2, 'unterminated """ block'),
        ('FROM story\nSYSTEM """a\n""" trailing\n', 3, "unexpected text after the closing"),
        ("FROM story\nSYSTEM\n", 2, "SYSTEM needs its text"),
        ("FROM story\nTEMPLATE {% for %}\n", 2, "TEMPLATE: not a valid jinja template"),
        ("FROM no-such-model\n", 1, "FROM no-such-model: unknown model"),
        ("FROM story\nPARAMETER block_length 5\n", 2, "block_length: 5 must divide max_new_tokens (128)"),
        ("FROM story\nPARAMETER threshold 0.9\nPARAMETER factor 2\n", 2, "set either threshold or factor"),
    ],
)
def test_mistakes_are_one_line_naming_file_and_line(home, text, line, message):
    Path("bad.modelfile").write_text(text)
    error = failed("create", "mine", "-f", "bad.modelfile")
    assert f"bad.modelfile:{line}: " in error and message in error, error
    assert not (home / "models" / "mine").exists()


def test_parse_error_carries_the_line():
    with pytest.raises(ModelfileError) as err:
        parse_modelfile("FROM story\n\n\nPARAMETER nope 1")
    assert err.value.line == 4


def test_names_and_missing_files_are_checked():
    Path("Modelfile").write_text("FROM story\n")
    assert "embedded model" in failed("create", "story")
    assert "alias of Dream-org" in failed("create", "dream")
    assert "not a model name" in failed("create", "Mine")
    assert "not a model name" in failed("create", "a/b")
    assert "missing.txt: no such file" in failed("create", "mine", "-f", "missing.txt")


# --------------------------------------------------------------------------------------------- create, list, run


def test_create_list_show_and_run_by_name(home):
    out = create("short", "FROM story\nPARAMETER steps 8\nPARAMETER max_new_tokens 16\n").stdout
    assert out.startswith("created short from story: steps=8 max_new_tokens=16")
    spec = json.loads((home / "models" / "short" / "model.json").read_text())
    assert spec["base"] == "story" and spec["base_source"] == "embedded" and spec["from"] == "story"
    assert spec["parameters"] == {"steps": 8, "max_new_tokens": 16} and spec["created"]
    assert not any(p.suffix == ".safetensors" for p in (home / "models" / "short").iterdir())  # no weights copied

    row = listed()["short"]
    assert row["source"] == "named" and row["base"] == "story" and row["options"] == spec["parameters"]
    assert row["architecture"] == "llada" and row["complete"] and row["path"] == str(home / "models" / "short")
    assert row["base_path"] == str(loading.WEIGHTS_DIR / "story")
    table = ok("list").stdout
    assert any(line.startswith("short ") and "(from story)" in line for line in table.splitlines())

    shown = json.loads(ok("show", "short", "--json").stdout)
    assert shown["source"] == "named" and shown["defaults"]["steps"] == 8 and shown["defaults"]["max_new_tokens"] == 16
    text = ok("show", "short").stdout
    assert "named model (unmask create)" in text and "steps=8  max_new_tokens=16" in text

    assert loading.resolve("short") == loading.WEIGHTS_DIR / "story"
    result = json.loads(ok("run", "short", "Once upon a time", "--json", "--seed", "1").stdout)
    assert result["model"] == "short" and result["steps"] == 8 and result["options"]["max_new_tokens"] == 16
    # a request's own fields still win over the named model's
    again = json.loads(ok("run", "short", "Once upon a time", "--json", "--steps", "4", "--seed", "1").stdout)
    assert again["steps"] == 4


def test_create_replaces_and_from_a_named_model_takes_its_settings(home):
    create("first", "FROM story\nPARAMETER steps 8\nPARAMETER max_new_tokens 16\nSYSTEM first\n")
    assert create("first", "FROM story\nPARAMETER steps 16\nPARAMETER max_new_tokens 16\n").stdout.startswith(
        "replaced first"
    )
    create("second", "FROM first\nPARAMETER temperature 0\nSYSTEM second\n")
    spec = json.loads((home / "models" / "second" / "model.json").read_text())
    assert spec["base"] == "story" and spec["from"] == "first" and spec["system"] == "second"
    assert spec["parameters"] == {"steps": 16, "max_new_tokens": 16, "temperature": 0.0}
    ok("rm", "first", "-y")
    assert loading.resolve("second") == loading.WEIGHTS_DIR / "story"  # made from first's base, not from first


def test_a_named_model_whose_base_is_gone_says_so(home):
    shutil.copytree(loading.WEIGHTS_DIR / "story", "copy", ignore=shutil.ignore_patterns("README.md"))
    create("orphan", "FROM ./copy\nPARAMETER steps 8\n")
    spec = json.loads((home / "models" / "orphan" / "model.json").read_text())
    assert spec["base_source"] == "folder" and spec["base"] == str(Path("copy").resolve())
    shutil.rmtree("copy")
    row = listed()["orphan"]
    assert row["source"] == "named" and not row["supported"]
    assert "gone" in failed("run", "orphan", "Once")
    ok("rm", "orphan", "-y")
    assert "orphan" not in listed()


def test_a_relative_from_is_taken_from_the_modelfiles_folder(tmp_path):
    (tmp_path / "models").mkdir()
    shutil.copytree(loading.WEIGHTS_DIR / "story", tmp_path / "models" / "base")
    Path("models/Modelfile").write_text("FROM base\n")
    ok("create", "near", "-f", "models/Modelfile")
    assert loading.resolve("near") == (tmp_path / "models" / "base").resolve()


# --------------------------------------------------------------------------------------------- system prompt


def test_system_and_template_apply_to_chats(home):
    create("chatty", f'FROM story\nSYSTEM Be brief.\nTEMPLATE """{TEMPLATE}"""\n')
    model = unmask.load("chatty")
    tok = model.tokenizer
    assert model.system_prompt == "Be brief." and tok.chat_template == TEMPLATE and model.chat
    user = [{"role": "user", "content": "Hello"}]
    expected = tok.encode("[system] Be brief.\n[user] Hello\n", add_special_tokens=False)
    assert chat_or_prompt_ids(model, messages=user) == expected
    own = [{"role": "system", "content": "Be long."}, *user]
    assert chat_or_prompt_ids(model, messages=own) == tok.encode(
        "[system] Be long.\n[user] Hello\n", add_special_tokens=False
    )
    # a plain prompt is the text alone
    assert chat_or_prompt_ids(model, prompt="Hello") == tok.encode("Hello", add_special_tokens=False)
    listed_row = listed()["chatty"]
    assert listed_row["system"] == "Be brief." and listed_row["template"] is True


def test_system_comes_first_for_a_model_without_a_chat_template():
    create("plain", "FROM story\nSYSTEM Once upon a time\n")
    model = unmask.load("plain")
    assert not model.chat
    ids = chat_or_prompt_ids(model, messages=[{"role": "user", "content": "there was a fox."}])
    assert ids == model.tokenizer.encode("Once upon a time\nthere was a fox.", add_special_tokens=False)
    story = unmask.load("story")
    assert story.system_prompt is None
    assert chat_or_prompt_ids(story, messages=[{"role": "user", "content": "a fox"}]) == story.tokenizer.encode(
        "a fox", add_special_tokens=False
    )


# --------------------------------------------------------------------------------------------- cp, rm


def test_cp_and_rm(home):
    create("one", "FROM story\nPARAMETER steps 8\nPARAMETER max_new_tokens 16\n")
    assert ok("cp", "one", "two").stdout.startswith("copied one to two")
    assert json.loads((home / "models" / "two" / "model.json").read_text())["parameters"]["steps"] == 8
    assert ok("cp", "story", "three").stdout.startswith("created three from story")
    three = json.loads((home / "models" / "three" / "model.json").read_text())
    assert three["base"] == "story" and three["parameters"] == {} and three["system"] is None
    assert "already exists" in failed("cp", "one", "two")
    assert "unknown model 'nope'" in failed("cp", "nope", "four")
    assert "embedded model" in failed("cp", "one", "sudoku")
    assert {"one", "two", "three"} <= set(listed())

    assert "kept two" in failed("rm", "two", input="n\n")
    assert (home / "models" / "two").is_dir()
    assert "removed two" in ok("rm", "two", input="y\n").stdout
    ok("rm", "three", "-y")
    names = set(listed())
    assert "one" in names and "two" not in names and "three" not in names
    assert (loading.WEIGHTS_DIR / "story" / "model.safetensors").is_file()  # the base stays
    assert "named model" in failed("pull", "one")
    assert "unknown model 'nope': give a named model" in failed("rm", "nope", "-y")


# --------------------------------------------------------------------------------------------- trained models


def test_trained_models_under_runs_are_listed(tmp_path):
    shutil.copytree(loading.WEIGHTS_DIR / "story", tmp_path / "runs" / "x" / "model")
    (tmp_path / "runs" / "y" / "model").mkdir(parents=True)  # a run that has not exported yet
    row = listed()["runs/x/model"]
    assert row["source"] == "trained" and row["architecture"] == "llada" and row["complete"]
    assert row["path"] == str((tmp_path / "runs" / "x" / "model").resolve())
    assert "runs/y/model" not in listed()
    assert [c.name for c in checkpoints.trained_checkpoints(tmp_path)] == ["runs/x/model"]
    assert loading.resolve("runs/x/model") == Path("runs/x/model")  # `unmask run` takes it as listed


# --------------------------------------------------------------------------------------------- server


@pytest.mark.slow
def test_a_named_model_is_served_by_name():
    from unmask.server import Limits, Settings, create_app

    create("served", "FROM story\nPARAMETER steps 8\nPARAMETER max_new_tokens 16\n")
    limits = Limits(body_bytes=64 * 1024, max_tokens=16, steps=16, context=256, choices=4)
    sock = loopback_socket()
    settings = Settings(model="story", limits=limits, host="127.0.0.1", port=sock.getsockname()[1])
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5
    )
    server, thread = start_uvicorn(config, "named-model server", sock)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.port}", timeout=60) as client:
            ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
            assert "served" in ids and "story" in ids
            described = {m["name"]: m for m in client.get("/api/models").json()["models"]}
            assert described["served"]["defaults"]["steps"] == 8
            answer = client.post("/v1/completions", json={"model": "served", "prompt": "Once upon a time", "seed": 1})
            assert answer.status_code == 200, answer.text
            assert answer.json()["model"] == "served"
    finally:
        server.should_exit = True
        thread.join(30)
