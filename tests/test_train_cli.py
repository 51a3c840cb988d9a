"""`unmask train` as a user sees it: what it says before the first step, log lines that carry
step, loss, val loss, lr and tokens/s, a one-time duration estimate, and Ctrl-C in a real
subprocess (saved, exported, status 130, resumed by the same command)."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading

import pytest
import torch
from typer.testing import CliRunner

import unmask
from unmask.cli import app
from unmask.cli.train import PACE_SKIP, PACE_STEPS, RunNotes
from unmask.train.loop import TrainConfig

CLI = [sys.executable, "-c", "from unmask.cli import main; main()"]
TEXT = "The fox ran to the river. The bear slept in the cave. A bird sang in the tree.\n" * 40
TINY = ["--batch-size", "2", "--d-model", "32", "--layers", "2"]
NUMBER = r"\d+\.\d+(?:e[-+]\d+)?"


def test_plain_log_lines_carry_step_loss_val_lr_and_speed(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    result = CliRunner().invoke(
        app, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--steps", "50", *TINY]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("training a BPE tokenizer") and lines[0].endswith("KB of text...")
    step_lines = [line for line in lines if line.startswith("step ")]
    shown = [line.split()[1] for line in step_lines]
    assert "25/50" in shown and shown[-1] == "50/50"
    pattern = rf"step \d+/50 loss {NUMBER} val {NUMBER} lr {NUMBER} \d+ tok/s {NUMBER} min"
    for line in step_lines:
        assert re.fullmatch(pattern, line), line
    assert (
        sum("s/step on this machine; --max-minutes or --stop-at stop early and export" in line for line in lines) == 1
    )


def test_d_model_is_checked_and_only_for_text_runs():
    def error(*args: str) -> str:
        result = CliRunner().invoke(app, ["train", *args])
        assert result.exit_code == 2
        return " ".join(result.output.replace("│", " ").split())  # the error box wraps long lines

    assert "--d-model and --layers size --data runs" in error("--recipe", "story", "--d-model", "64")
    assert "use 32 or a multiple of 64" in error("--data", "x.txt", "--d-model", "100")


def test_init_starts_from_a_models_weights_and_keeps_its_tokenizer(tmp_path):
    """`--init` is a fine-tune: at learning rate 0 the run exports its start's weights exactly,
    with its tokenizer (no new one is trained); at a real rate it moves them."""
    from safetensors.torch import load_file

    data, other = tmp_path / "corpus.txt", tmp_path / "other.txt"
    data.write_text(TEXT)
    other.write_text("The owl flew over the hill. The frog sat by the pond.\n" * 40)
    base = CliRunner().invoke(
        app, ["train", "--data", str(data), "--out", str(tmp_path / "base"), "--steps", "10", *TINY]
    )
    assert base.exit_code == 0, base.output
    start = tmp_path / "base" / "model"

    def fine_tune(out: str, lr: str) -> tuple[str, dict]:
        args = ["train", "--data", str(other), "--init", str(start), "--out", str(tmp_path / out), "--lr", lr]
        result = CliRunner().invoke(app, [*args, "--steps", "3", "--batch-size", "2"])
        assert result.exit_code == 0, result.output
        return result.output, load_file(str(tmp_path / out / "model" / "model.safetensors"))

    before = load_file(str(start / "model.safetensors"))
    output, still = fine_tune("still", "0")
    assert f"starting from {start}" in output and "training a BPE tokenizer" not in output
    assert (tmp_path / "still" / "model" / "tokenizer.json").read_text() == (start / "tokenizer.json").read_text()
    assert before.keys() == still.keys() and all(torch.equal(before[k], still[k]) for k in before)
    _, moved = fine_tune("moved", "1e-2")
    assert any(not torch.equal(before[k], moved[k]) for k in before)
    assert unmask.load(tmp_path / "moved" / "model").tokenizer.encode("The owl") is not None


def test_init_refuses_a_model_of_another_kind_before_making_any_data(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    base = CliRunner().invoke(
        app, ["train", "--data", str(data), "--out", str(tmp_path / "base"), "--steps", "2", *TINY]
    )
    assert base.exit_code == 0, base.output
    start = str(tmp_path / "base" / "model")

    def error(*args: str) -> str:
        result = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "run"), *args])
        assert result.exit_code == 2, result.output
        return " ".join(result.output.replace("│", " ").split())  # the error box wraps long lines

    story = error("--recipe", "story", "--init", start)
    assert "--init" in story and "is not this recipe's model" in story and "d_model is 32, the recipe's 256" in story
    assert "model_type is 'llada', the recipe's 'grid'" in error("--recipe", "sudoku", "--init", start)
    assert "--data runs train LLaDA models; sudoku is 'grid'" in error("--data", str(data), "--init", "sudoku")
    assert "unknown model 'nowhere'" in error("--data", str(data), "--init", "nowhere")
    assert not (tmp_path / "run").exists()  # nothing was generated or written


def record(step: int, elapsed: float, **extra) -> dict:
    return {"step": step, "loss": 1.0, "lr": 1e-3, "tokens_per_s": 100.0, "elapsed_s": elapsed} | extra


def test_run_notes_estimate_once_and_pass_warnings_on():
    """Two seconds a step after the compile-slow first steps: the estimate says so, once."""
    trainer = type("FakeTrainer", (), {"cfg": TrainConfig(steps=10_000), "step": 0})()
    notes, said = RunNotes(trainer), []
    elapsed = 0.0
    for step in range(1, 40):
        elapsed += 60.0 if step <= PACE_SKIP else 2.0
        said += notes.update(record(step, elapsed))
    assert len(said) == 1 and said[0].startswith("~5.5 h to go at 2 s/step on this machine")
    assert notes.update(record(40, elapsed + 2, warning="validation loss is flat")) == [
        "warning: validation loss is flat"
    ]
    assert " val - " in RunNotes(trainer).stats(record(1, 1.0))  # no evaluation yet
    notes.update(record(42, elapsed + 6, val_loss=2.5))
    assert " val 2.5000 " in notes.stats(record(43, elapsed + 8))
    assert PACE_SKIP + PACE_STEPS < 40


class Lines:
    """A subprocess's output, line by line, read on a thread so a silent child cannot hang the test."""

    def __init__(self, process: subprocess.Popen):
        self.queue: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self.pump, args=(process.stdout,), daemon=True).start()

    def pump(self, stream) -> None:
        for line in stream:
            self.queue.put(line)
        self.queue.put(None)

    def wait_for(self, text: str, timeout: float = 120) -> str:
        while True:
            line = self.queue.get(timeout=timeout)
            assert line is not None, f"the process ended before printing {text!r}:\n{''.join(self.seen)}"
            self.seen.append(line)
            if text in line:
                return line

    def rest(self, timeout: float = 120) -> str:
        while (line := self.queue.get(timeout=timeout)) is not None:
            self.seen.append(line)
        return "".join(self.seen)


@pytest.mark.slow
def test_ctrl_c_saves_exports_and_the_same_command_resumes(tmp_path):
    data, out = tmp_path / "corpus.txt", tmp_path / "run"
    data.write_text(TEXT)
    # Enough steps that the run is still going when Ctrl-C comes (about 10 ms a step).
    command = [*CLI, "train", "--data", str(data), "--out", str(out), "--steps", "100000", *TINY]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = Lines(process)
        lines.wait_for("step 50/100000")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130
        output = lines.rest()
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in output, output
    stopped = re.search(
        r"interrupted at step (\d+): state saved in (\S+), model exported to (\S+); run the same", output
    )
    assert stopped, output
    step = int(stopped.group(1))
    assert step >= 50 and stopped.group(3) == str(out / "model")
    assert json.loads((out / "state" / "trainer.json").read_text())["step"] == step
    assert unmask.load(out / "model").tokenizer is not None

    again = subprocess.run([*command, "--stop-at", str(step + 3)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"resuming {out} at step {step}" in again.stdout
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log][-3:] == [step + 1, step + 2, step + 3]
