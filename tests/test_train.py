"""Training: a few steps on a tiny corpus, a checkpoint that reloads exactly, an exact resume,
Ctrl-C that saves the last finished step, saves and exports that survive interruption, and the
flat-loss warning."""

from __future__ import annotations

import json
import os
import random
import signal

import pytest
import torch
from typer.testing import CliRunner

import unmask
from unmask.cli import app
from unmask.train import loop, recipes
from unmask.train.data import Alternating, HeadBatches, fit_document
from unmask.train.loop import Interrupted, TrainConfig, Trainer, lr_at, sigint_held
from unmask.train.objective import diffusion_loss, mask_tokens

TEXT = "The fox ran to the river. The bear slept in the cave. A bird sang in the tree.\n" * 40


def tiny_text_recipe(tmp_path, steps=6):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    return recipes.text_recipe(
        tmp_path / "run", [data], steps=steps, batch_size=4, length=32, vocab=300, d_model=32, n_layers=2
    )


def test_trains_and_reloads_with_identical_logits(tmp_path):
    r = tiny_text_recipe(tmp_path)
    trainer = Trainer(r.model_config, r.train, r.val, tmp_path / "run", r.config, r.export_files)
    first = diffusion_loss(trainer.net, r.train(0)[0], trainer.mask_id, torch.Generator().manual_seed(0)).loss.item()
    folder = trainer.run()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 6 and "val_loss" in log[-1]
    model = unmask.load(folder, dtype="float32")
    x = torch.tensor([[5, 6, 7, 8, 9, 10]])
    expected = trainer.net.to(torch.bfloat16).float()(x)  # the export is bfloat16
    torch.testing.assert_close(model.logits(x), expected)
    assert model.tokenizer is not None and model.ids.mask == recipes.MASK_ID
    text = model.tokenizer.decode(
        model.generate([model.tokenizer.encode("The fox")], max_new_tokens=8, steps=8).sequences[0]
    )
    assert text.startswith("The fox")
    assert first > 0


def test_resume_continues_exactly(tmp_path):
    r = tiny_text_recipe(tmp_path, steps=6)
    r.config.save_every = 3
    straight = Trainer(r.model_config, r.train, r.val, tmp_path / "a", r.config, r.export_files)
    straight.run()

    class Interrupted(Exception):
        pass

    def crash_after_step_4(record):
        if record["step"] == 4:
            raise Interrupted

    half = Trainer(r.model_config, r.train, r.val, tmp_path / "b", r.config, r.export_files)
    try:
        half.run(crash_after_step_4)
    except Interrupted:
        pass
    resumed = Trainer(r.model_config, r.train, r.val, tmp_path / "b", r.config, r.export_files)
    assert resumed.resume() and resumed.step == 3
    resumed.run()
    for (name, a), b in zip(straight.net.state_dict().items(), resumed.net.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_stop_at_keeps_the_full_schedule_and_resumes(tmp_path):
    """--stop-at 3 of a 6-step run exports at step 3 with the 6-step schedule's learning rates,
    and running on to 6 matches the straight run."""
    r = tiny_text_recipe(tmp_path, steps=6)
    straight = Trainer(r.model_config, r.train, r.val, tmp_path / "a", r.config, r.export_files)
    straight.run()
    r.config.stop_at = 3
    early = Trainer(r.model_config, r.train, r.val, tmp_path / "b", r.config, r.export_files)
    assert (early.run() / "model.safetensors").is_file() and early.step == 3
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [rec["lr"] for rec in log] == [lr_at(i, r.config) for i in range(3)]
    r.config.stop_at = None
    resumed = Trainer(r.model_config, r.train, r.val, tmp_path / "b", r.config, r.export_files)
    assert resumed.resume() and resumed.step == 3
    resumed.run()
    for (name, a), b in zip(straight.net.state_dict().items(), resumed.net.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_objective_masks_at_the_drawn_rate():
    tokens = torch.randint(2, 50, (512, 64))
    noisy, masked, p = mask_tokens(tokens, 1, torch.Generator().manual_seed(0))
    assert torch.equal(noisy == 1, masked)
    rates = masked.float().mean(1)
    assert torch.corrcoef(torch.stack([rates, p.squeeze(1)]))[0, 1] > 0.95


def test_head_rows_leave_the_rest_of_the_canvas_masked_and_unscored():
    pairs = {0: ([5, 6], [7, 8, 9]), 1: ([5], [7] * 9)}
    rows, maskable = HeadBatches(lambda i: pairs[i % 2], mask_id=1, batch_size=2, length=8)(0)
    assert rows.tolist() == [[5, 6, 7, 8, 9, 1, 1, 1], [5, 7, 7, 7, 7, 7, 7, 7]]  # a long head is cut
    assert maskable.tolist() == [[False, False, True, True, True, False, False, False], [False] + [True] * 7]
    # Only the head is ever masked, so the mask tokens after it are input, never a target.
    noisy, masked, _ = mask_tokens(rows, 1, torch.Generator().manual_seed(0), maskable=maskable)
    assert not masked[~maskable].any() and (noisy[0, 5:] == 1).all()
    both = Alternating([lambda n: ("full", n), lambda n: ("heads", n)])
    assert [both(n) for n in range(3)] == [("full", 0), ("heads", 1), ("full", 2)]


def test_lr_schedule():
    cfg = TrainConfig(steps=100, lr=1.0, warmup=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == 0.1 and lr_at(9, cfg) == 1.0
    assert abs(lr_at(100, cfg) - 0.1) < 1e-9 and lr_at(50, cfg) < lr_at(20, cfg)


def test_fit_document_keeps_first_and_last():
    import random

    doc = [[1, 1], [2, 2, 2], [3, 3], [4, 4, 4], [5]]
    out = fit_document(doc, 6, random.Random(0))
    assert out[:2] == [1, 1] and out[-1] == 5 and len(out) <= 6


def test_story_rows_keep_their_anchors_and_pass_the_story_checker():
    """Rows fitted to short canvases drop only sentences that no rule needs (stories.anchors),
    and a story whose anchors do not fit is drawn again; before, one row in five lost an
    introduction. The anchors survive the corpus cache."""
    from unmask.tasks.stories import anchors, generate_corpus, split_sentences, story_scores
    from unmask.train.data import DocumentBatches
    from unmask.train.recipes import END_ID, encode_documents, flatten, train_bpe, unflatten

    corpus = generate_corpus(300, seed=3)
    tokenizer = train_bpe(corpus, 2048)
    docs = encode_documents(tokenizer, corpus, split_sentences, anchors)
    assert unflatten(flatten(docs, "x"), "x") == docs

    def texts(batches):
        rows = [row for step in range(6) for row in batches(step)[0].tolist()]
        return [tokenizer.decode([t for t in row if t != END_ID]) for row in rows]

    lengths = [48, 64, 96, 128]
    kept = story_scores(texts(DocumentBatches(docs.sentences, END_ID, 16, lengths, 0, docs.anchors)))
    assert kept["passed"] == 1.0, kept
    cut = story_scores(texts(DocumentBatches(docs.sentences, END_ID, 16, lengths, 0)))
    assert cut["passed"] < 0.9 and cut["failed"]["introduced"] > 0.05, cut


def test_cli_train_on_text_files(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    result = CliRunner().invoke(
        app, ["train", "--data", str(data), "--out", str(tmp_path / "cli"), "--steps", "2", "--batch-size", "2"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "model" / "model.safetensors").exists()
    bad = CliRunner().invoke(app, ["train", "--recipe", "poetry"])
    assert bad.exit_code != 0 and "unknown recipe" in bad.output


def assert_same_weights(a: Trainer, b: Trainer) -> None:
    for (name, x), y in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        torch.testing.assert_close(x, y, msg=name)


def ctrl_c_at(step: int):
    def log(record):
        if record["step"] == step:
            raise KeyboardInterrupt

    return log


def test_ctrl_c_saves_the_last_finished_step_and_resumes_exactly(tmp_path):
    """Ctrl-C after step 4 of 6 (saves every 3) keeps step 4, not 3, and the resumed run ends
    where the straight one does."""
    r = tiny_text_recipe(tmp_path, steps=6)
    r.config.save_every = 3
    straight = Trainer(r.model_config, r.train, r.val, tmp_path / "a", r.config, r.export_files)
    straight.run()
    half = Trainer(r.model_config, r.train, r.val, tmp_path / "b", r.config, r.export_files)
    with pytest.raises(Interrupted) as stop:
        half.run(ctrl_c_at(4))
    assert stop.value.step == 4 and stop.value.folder == tmp_path / "b" / "model"
    assert unmask.load(stop.value.folder).tokenizer is not None
    resumed = Trainer(r.model_config, r.train, r.val, tmp_path / "b", r.config, r.export_files)
    assert resumed.resume() and resumed.step == 4
    resumed.run()
    assert_same_weights(straight, resumed)


def test_a_second_ctrl_c_waits_for_the_save(tmp_path, monkeypatch):
    r = tiny_text_recipe(tmp_path, steps=6)
    r.config.save_every = 100
    real_save_file, saving = loop.save_file, []

    def save_file_then_ctrl_c(*args, **kwargs):
        if saving and len(saving) == 1:  # the first file of the Ctrl-C save
            os.kill(os.getpid(), signal.SIGINT)
        saving.append(args[1])
        return real_save_file(*args, **kwargs)

    def first_ctrl_c(record):
        if record["step"] == 2:
            saving.append("ctrl-c")
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_file", save_file_then_ctrl_c)
    trainer = Trainer(r.model_config, r.train, r.val, tmp_path / "run", r.config, r.export_files)
    with pytest.raises(KeyboardInterrupt) as stop:  # a bare one would mean the second Ctrl-C cut the save
        trainer.run(first_ctrl_c)
    assert isinstance(stop.value, Interrupted)
    assert len(saving) == 4  # state model + moments, then the exported model: none cut short
    resumed = Trainer(r.model_config, r.train, r.val, tmp_path / "run", r.config, r.export_files)
    assert resumed.resume() and resumed.step == 2


def test_an_interrupted_save_or_export_leaves_the_previous_files(tmp_path, monkeypatch):
    r = tiny_text_recipe(tmp_path, steps=4)
    r.config.save_every = 2
    trainer = Trainer(r.model_config, r.train, r.val, tmp_path / "run", r.config, r.export_files)
    with pytest.raises(Interrupted):
        trainer.run(ctrl_c_at(3))  # saves step 3, the state a later save must not lose
    real_save_file = loop.save_file

    def half_written_then_killed(tensors, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise SystemExit("killed")

    monkeypatch.setattr(loop, "save_file", half_written_then_killed)
    trainer.step = 99
    for write in (trainer.save, trainer.export):
        with pytest.raises(SystemExit):
            write()
    monkeypatch.setattr(loop, "save_file", real_save_file)
    assert unmask.load(tmp_path / "run" / "model").tokenizer is not None
    resumed = Trainer(r.model_config, r.train, r.val, tmp_path / "run", r.config, r.export_files)
    assert resumed.resume() and resumed.step == 3


def test_sigint_held_delivers_ctrl_c_after_the_block():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_held():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("the block finished")
    assert done
    with sigint_held(replay=False):
        os.kill(os.getpid(), signal.SIGINT)


def flat_check_run(tmp_path, text: str) -> list[dict]:
    """200 steps at a near-constant learning rate (a 1000-step schedule stopped at 200), evaluated
    every 10 steps: long enough for random bytes to reach their floor while the lr is high."""
    data = tmp_path / "corpus.txt"
    data.write_text(text)
    r = recipes.text_recipe(
        tmp_path / "run", [data], steps=1000, batch_size=4, length=32, vocab=300, d_model=32, n_layers=2
    )
    r.config.warmup, r.config.eval_every, r.config.save_every, r.config.stop_at = 10, 10, 1000, 200
    records = []
    Trainer(r.model_config, r.train, r.val, tmp_path / "run", r.config, r.export_files).run(records.append)
    return records


def test_flat_validation_loss_warns_once(tmp_path):
    rng = random.Random(0)
    noise = "".join(chr(rng.randrange(33, 127)) for _ in range(20_000))  # nothing to learn past the unigram
    warnings = [r for r in flat_check_run(tmp_path, noise) if "warning" in r]
    assert len(warnings) == 1, warnings
    assert "validation loss is flat" in warnings[0]["warning"] and "--steps" in warnings[0]["warning"]
    assert warnings[0]["lr"] >= loop.FLAT_LR_FRACTION * 1e-3
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["warning"] for r in logged if "warning" in r] == [warnings[0]["warning"]]


def test_a_learning_run_does_not_warn(tmp_path):
    assert not [r for r in flat_check_run(tmp_path, TEXT) if "warning" in r]
