"""The command line as Ollama and llama.cpp users expect it: infill that keeps every word, threads
that fit the machine, context checks, one-line errors, an honest live view, every decoding flag,
`ps` and `stop` against a real server."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import sys

import pexpect
import pytest
from rich.console import Console
from typer.testing import CliRunner

from unmask.cli import app
from unmask.cli import common as cli_common

runner = CliRunner()
README_TEMPLATE = "Once upon a time, a fox lived in a den. {{40}} And the fox was never lonely again."


def invoke(*args, input=None, env=None):
    return runner.invoke(app, [str(a) for a in args], input=input, env=env)


def one_line_error(result, *words) -> str:
    assert result.exit_code != 0, result.output
    text = " ".join(result.output.split())
    assert "Traceback" not in result.output and text.startswith("error:"), result.output
    for word in words:
        assert word in text, text
    return text


# -- infill keeps every word ----------------------------------------------------------------


@pytest.mark.slow
def test_the_readme_infill_keeps_every_word_with_single_spaces():
    """The text before a gap ends in a space; encoded, that is a lone space token, after which the
    model wrote ' snowy' (a double space) and lost the gap's first word. 18 of 20 showed it."""
    for seed in range(8):
        result = invoke("infill", "story", README_TEMPLATE, "--json", "--seed", seed)
        assert result.exit_code == 0, result.output
        text = json.loads(result.output)["text"]
        assert "  " not in text, f"a double space at seed {seed}: {text!r}"
        head = "Once upon a time, a fox lived in a den. "
        assert text.startswith(head) and text.endswith(" And the fox was never lonely again.")
        assert text[len(head)][0].isupper(), f"the gap's first word is missing at seed {seed}: {text!r}"


def test_a_gap_does_not_repeat_the_space_before_it():
    from unmask.engine import Completion, GenerationOptions, infill_canvas, load

    model = load("story")
    canvas = infill_canvas(model, "A fox. {{4}} The end.")
    assert canvas.leads == {0: " "}
    assert model.tokenizer.decode(canvas.prompt_ids) == "A fox.", "the trailing space is not encoded"
    words = model.tokenizer.encode(" One day", add_special_tokens=False)
    region = list(canvas.region)
    region[: len(words)] = words
    region[len(words) : 4] = [model.ids.eos[0]] * (4 - len(words))
    c = Completion(model, canvas, GenerationOptions(max_new_tokens=len(region)))
    c.finish(region)
    # The prefix is shown as written; the gap's ' One' does not add a second space.
    assert canvas.prefix_text + c.text == "A fox. One day The end."


# -- threads --------------------------------------------------------------------------------


def test_auto_threads_leave_busy_cores_alone(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.9, 1.0, 1.0))
    assert cli_common.auto_threads() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert cli_common.auto_threads() == 2


@pytest.mark.parametrize("verb", ["run", "infill", "chat", "bench"])
def test_every_model_verb_takes_threads(verb):
    assert "--threads" in invoke(verb, "--help").output
    result = invoke(verb, "story", *(["x {{2}}"] if verb == "infill" else []), "--threads", "many")
    one_line_error(result, "--threads", "auto")


# -- context --------------------------------------------------------------------------------


def test_a_prompt_longer_than_the_context_is_refused():
    result = invoke("run", "story", "The fox ran to the river. " * 60, "--no-live")
    one_line_error(result, "prompt", "context of 256 tokens")


def test_more_new_tokens_than_the_context_are_refused():
    one_line_error(invoke("run", "story", "Once upon a time", "-n", "2048"), "--max-new-tokens", "context")


def test_a_gap_larger_than_the_context_is_refused():
    one_line_error(invoke("infill", "story", "Once {{2000}} the end."), "template", "context")


def test_ctx_bounds_the_context():
    one_line_error(invoke("run", "story", "Once upon a time", "-n", "64", "--ctx", "32"), "context of 32 tokens")


def test_chat_leaves_out_old_turns_and_says_so():
    script = "".join(f"The fox ran to the river number {i} and back again.\n" for i in range(8)) + "/bye\n"
    result = invoke("chat", "story", "-n", "16", "--steps", "8", "--ctx", "64", input=script)
    assert result.exit_code == 0, result.output
    assert "left out to fit the context" in result.output


# -- one-line errors ------------------------------------------------------------------------


def test_zero_new_tokens_is_one_line():
    one_line_error(invoke("run", "story", "Once", "-n", "0"), "--max-new-tokens", "at least 1")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a torch build without the device to refuse")
def test_an_absent_device_is_one_line():
    one_line_error(invoke("run", "story", "Once", "--device", "cuda"), "cuda", "--device cpu")


def test_an_empty_prompt_is_an_error():
    one_line_error(invoke("run", "story", "   "), "prompt is empty")


def test_serve_on_a_busy_port_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("serve", "--port", port)
    text = one_line_error(result, f"port {port}", "already in use", "--port")
    assert "serving" not in text


UNSOLVABLE = "123456780" + "000000009" + "0" * 63  # no conflict, but cell 9 can hold nothing


def test_a_sudoku_with_no_solution_says_so():
    one_line_error(invoke("run", "sudoku", UNSOLVABLE), "no solution")


def test_the_live_grid_says_when_a_board_is_not_a_solution():
    from unmask.cli.live import GridView

    view = GridView(lambda t: str(t), [1] * 81, mask_id=0, solved=lambda board: False)
    view.done = True
    assert "not a valid solution" in render(view) and "solved" not in render(view)


# -- the live view --------------------------------------------------------------------------


def render(view) -> str:
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(view)
    return out.getvalue()


def story_view(prompt="Once upon a time"):
    from unmask.cli.run import canvas_view
    from unmask.engine import load, resolve, text_canvas

    model = load("story")
    canvas = text_canvas(model, prompt)
    options = resolve(model, {"max_new_tokens": 32, "steps": 16}, canvas=canvas)
    return model, canvas, options, canvas_view(model, canvas, options, prompt)


def test_the_first_frame_knows_the_plan():
    *_, view = story_view()
    footer = render(view).strip().splitlines()[-1]
    assert "step 0/16" in footer and "0/0" not in footer and "tok/s" not in footer


def test_the_last_frame_is_the_answer_without_placeholders():
    from unmask.engine import complete

    model, canvas, options, view = story_view()
    completion = complete(model, canvas, options, view.apply)
    view.finish(completion)
    frame = render(view)
    body = frame.strip().rsplit("\n", 1)[0]  # the footer's separators are dots too
    assert "·" not in body and completion.text.split()[0] in body
    assert re.search(r"done · \d+ tokens", frame)


def test_passes_are_counted_in_words():
    from unmask.cli.live import passes

    assert passes(1) == "1 pass" and passes(2) == "2 passes" and passes(107, 32) == "107 passes (32 planned)"


def test_masks_take_the_room_of_a_token_so_lines_do_not_reflow():
    model, canvas, options, view = story_view()
    first = render(view).count("\n")
    from unmask.engine import complete

    complete(model, canvas, options, view.apply)
    last = render(view).count("\n")  # the last step, before the final frame
    assert abs(first - last) <= 1, (first, last)


def test_flags_do_not_read_as_taking_a_value():
    out = invoke("run", "--help", env={"COLUMNS": "160"}).output
    assert "<bool>" not in out and "--fast" in out


# -- every decoding flag --------------------------------------------------------------------


def test_the_remaining_decoding_flags():
    result = invoke(
        "run",
        "story",
        "Once",
        "--json",
        "-n",
        "16",
        "--alg-temp",
        "0.1",
        "--eps",
        "0.01",
        "--cfg-scale",
        "1",
        "--recipe",
        "llada",
        "--factor",
        "1.0",
    )
    assert result.exit_code == 0, result.output
    options = json.loads(result.output)["options"]
    assert options["alg_temp"] == 0.1 and options["eps"] == 0.01 and options["cfg_scale"] == 1.0
    assert options["recipe"] == "llada" and options["factor"] == 1.0


def test_chat_takes_algorithm_and_block_length():
    result = invoke("chat", "story", "-n", "16", "--algorithm", "entropy", "--block-length", "8", input="/show\n/bye\n")
    assert result.exit_code == 0, result.output
    assert "entropy" in result.output and "'block_length': 8" in result.output


def test_bench_includes_the_models_defaults_and_the_presets():
    result = invoke("bench", "story", "-n", "16", "--block-length", "8", "--repeats", "1", "--threads", "1")
    assert result.exit_code == 0, result.output
    for mode in ("model defaults", "--fast", "--balanced", "--best", "exact, 1 step/token"):
        assert mode in result.output


# -- ps and stop ----------------------------------------------------------------------------


@pytest.mark.slow
def test_ps_and_stop_talk_to_a_running_server():
    from unmask.server import Limits, Settings

    from .server.conftest import LiveServer

    server = LiveServer(Settings(model="story", models=["story"], limits=Limits()))
    try:
        port = server.settings.port
        assert json.loads(invoke("ps", "--port", port, "--json").output) == []
        with server.client() as http:
            http.post("/api/diffuse", json={"prompt": "Once", "max_new_tokens": 8, "stream": False}).raise_for_status()
        listed = json.loads(invoke("ps", "--port", port, "--json").output)
        assert [m["name"] for m in listed] == ["story"] and listed[0]["size"] > 0
        table = invoke("ps", "--port", port).output
        assert "story" in table and "CPU" in table and "from now" in table
        assert invoke("stop", "story", "--port", port).exit_code == 0
        assert json.loads(invoke("ps", "--port", port, "--json").output) == []
        one_line_error(invoke("stop", "story", "--port", port), "not loaded")
    finally:
        server.stop()


def test_ps_without_a_server_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    one_line_error(invoke("ps", "--port", port), "no unmask server answers", "unmask serve")


# -- a real terminal ------------------------------------------------------------------------


@pytest.mark.slow
def test_the_live_view_in_a_real_terminal_starts_and_ends_honestly():
    child = pexpect.spawn(
        os.path.join(os.path.dirname(sys.executable), "unmask"),
        ["run", "story", "Once upon a time", "-n", "32", "--steps", "16", "--seed", "1"],
        env=os.environ | {"TERM": "xterm-256color", "COLUMNS": "100"},
        encoding="utf-8",
        timeout=60,
    )
    child.expect(pexpect.EOF)
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before)
    assert "step 0/0" not in screen and " 1 passes" not in screen
    assert "step 0/16" in screen or "step 1/16" in screen
    last = screen.strip().splitlines()[-1]
    assert last.startswith("done ·") and "passes" in last
    assert child.wait() == 0


def test_a_prompt_before_a_template_gives_its_trailing_space_to_the_first_gap():
    """The studio's rewrite sends the text before the span as `prompt` and the span as a gap."""
    from unmask.engine import infill_canvas, load, text_canvas

    model = load("story")
    start = text_canvas(model, "A fox lived in a den. ")
    canvas = infill_canvas(model, "{{4}} The end.", start.prompt_ids, start.leads.get(0, ""))
    assert canvas.leads == {0: " "} and model.tokenizer.decode(canvas.prompt_ids) == "A fox lived in a den."
