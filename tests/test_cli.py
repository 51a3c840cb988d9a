"""The generating verbs (run, infill, chat, bench) through typer's runner and a real terminal."""

from __future__ import annotations

import json
import os
import sys

import pexpect
import pytest
from typer.testing import CliRunner

from unmask.cli import app

runner = CliRunner()


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def test_help_lists_every_verb():
    out = invoke("--help").output
    for verb in ("run", "infill", "chat", "bench", "train"):
        assert verb in out


def test_run_prints_the_completion(tiny_text_model_dir):
    result = invoke("run", tiny_text_model_dir, "The fox", "--steps", "8", "-n", "16", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("The fox")


def test_run_json(tiny_text_model_dir):
    result = invoke("run", tiny_text_model_dir, "The fox", "--steps", "8", "-n", "16", "--json")
    data = json.loads(result.output)
    assert data["prompt"] == "The fox" and data["steps"] == 8 and data["nfe"] <= 8
    assert data["finish_reason"] in ("stop", "length") and "tokens_per_second" in data


def test_run_reads_stdin(tiny_text_model_dir):
    result = invoke("run", tiny_text_model_dir, "-n", "8", "--steps", "4", input="The bear")
    assert result.exit_code == 0 and result.output.startswith("The bear")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--steps", "0"], "--steps"),
        (["--algorithm", "greedy"], "--algorithm"),
        (["-n", "16", "--block-length", "5"], "block-length"),
        (["--threshold", "0.9", "--algorithm", "entropy"], "algorithm"),
        (["--fast", "--best"], "at most one"),
    ],
)
def test_bad_options_are_one_clear_line(tiny_text_model_dir, args, message):
    result = invoke("run", tiny_text_model_dir, "The fox", *args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_unknown_model_is_a_clear_error():
    result = invoke("run", "no-such-model", "hello")
    assert result.exit_code == 1 and "unknown model" in result.output and "Traceback" not in result.output


def test_debug_shows_the_traceback():
    result = invoke("--debug", "run", "no-such-model", "hello")
    assert result.exit_code != 0 and result.exception is not None


def test_presets(tiny_text_model_dir):
    fast = json.loads(
        invoke("run", tiny_text_model_dir, "The fox", "-n", "32", "--block-length", "8", "--fast", "--json").output
    )
    assert fast["options"]["threshold"] == 0.9 and fast["options"]["cache"] == "dual" and fast["steps"] == 8
    best = json.loads(invoke("run", tiny_text_model_dir, "The fox", "-n", "32", "--best", "--json").output)
    assert best["steps"] == 32


def test_infill_keeps_every_character_outside_the_gaps(tiny_text_model_dir):
    template = "The fox ran to the river. {{6}} A bird sang in the tree.{{3}}!"
    result = invoke("infill", tiny_text_model_dir, template, "--json")
    assert result.exit_code == 0, result.output
    text = json.loads(result.output)["text"]
    assert text.startswith("The fox ran to the river. ")
    middle, _, rest = text[len("The fox ran to the river. ") :].partition(" A bird sang in the tree.")
    assert rest.endswith("!") and "A bird sang in the tree." in text


def test_infill_without_gaps_fails_clearly(tiny_text_model_dir):
    result = invoke("infill", tiny_text_model_dir, "no gaps here")
    assert result.exit_code == 1 and "{{N}}" in result.output


def test_chat_commands(tiny_text_model_dir):
    script = "/steps 4\n/set temperature 0.5\n/set bogus 1\n/show\nThe fox\n/clear\n/bye\n"
    result = invoke("chat", tiny_text_model_dir, "-n", "8", input=script)
    assert result.exit_code == 0, result.output
    assert "steps = 4" in result.output and "bogus" in result.output and "conversation cleared" in result.output


def test_sudoku_json_lines_from_stdin(tiny_grid_model_dir):
    from unmask.tasks.sudoku import generate_puzzles

    puzzles = [p for p, _ in generate_puzzles(2, 36, seed=3)]
    result = invoke("run", tiny_grid_model_dir, "-", "--json", input="\n".join(puzzles) + "\n")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["puzzle"] for line in lines] == puzzles
    for line in lines:
        assert len(line["solution"]) == 81 and line["solution"].isdigit()
        assert all(p in ("0", s) for p, s in zip(line["puzzle"], line["solution"])), "givens are kept"


def test_sudoku_bad_puzzle(tiny_grid_model_dir):
    result = invoke("run", tiny_grid_model_dir, "123")
    assert result.exit_code == 1 and "81 cells" in result.output


def test_bench_table(tiny_text_model_dir):
    result = invoke("bench", tiny_text_model_dir, "-n", "16", "--block-length", "8", "--repeats", "1")
    assert result.exit_code == 0, result.output
    for mode in ("exact, 1 step/token", "threshold 0.9", "prefix cache", "dual cache"):
        assert mode in result.output


def unmask_cmd() -> str:
    return os.path.join(os.path.dirname(sys.executable), "unmask")


@pytest.mark.slow
def test_live_view_in_a_real_terminal(tiny_text_model_dir):
    """The canvas is drawn with placeholders while it denoises, and the final text stays."""
    child = pexpect.spawn(
        unmask_cmd(),
        ["run", str(tiny_text_model_dir), "The fox", "-n", "24", "--steps", "12"],
        env=os.environ | {"TERM": "xterm-256color", "COLUMNS": "100"},
        encoding="utf-8",
        timeout=60,
    )
    child.expect(pexpect.EOF)
    screen = child.before
    assert "·" in screen, "masked placeholders are drawn while denoising"
    assert "step " in screen and "passes" in screen
    assert "done ·" in screen.splitlines()[-1] or "done ·" in screen
    assert "The fox" in screen
    # EOF means the pty closed, not that the process has exited; close() would
    # SIGHUP a child still tearing down, so wait for its real exit status.
    assert child.wait() == 0


@pytest.mark.slow
def test_sudoku_live_grid_in_a_real_terminal(tiny_grid_model_dir):
    child = pexpect.spawn(
        unmask_cmd(),
        ["run", str(tiny_grid_model_dir), "--seed", "4"],
        env=os.environ | {"TERM": "xterm-256color", "COLUMNS": "100"},
        encoding="utf-8",
        timeout=60,
    )
    child.expect(pexpect.EOF)
    assert "│" in child.before and "blank" in child.before
    # EOF means the pty closed, not that the process has exited; close() would
    # SIGHUP a child still tearing down, so wait for its real exit status.
    assert child.wait() == 0


def test_remask_flag_and_presets(tiny_text_model_dir):
    plain = json.loads(
        invoke("run", tiny_text_model_dir, "The fox", "-n", "16", "--steps", "8", "--remask", "0.3", "--json").output
    )
    assert plain["options"]["remask"] == 0.3
    both = invoke("run", tiny_text_model_dir, "The fox", "--remask", "0.3", "--threshold", "0.9")
    assert both.exit_code != 0 and "remask" in both.output and "Traceback" not in both.output
