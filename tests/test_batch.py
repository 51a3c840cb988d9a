"""`unmask batch` on the local engine: every line answered once and in order, resumable without a
duplicate, bad lines reported by line number without stopping the job, and a line's answer equal
to what `unmask run --json` / `unmask infill --json` print for the same prompt, options and seed.
The core imports without Ray, and `--ray` without it is one line naming the extra."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from unmask.cli import app

runner = CliRunner()
FAST = ["-n", "8", "--steps", "4"]  # small canvases: 200 lines in a few seconds
PROMPTS = ["Once upon a time", "A little fox", "The dog ran", "One day, a girl", "In the forest"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def lines_file(tmp_path, count: int = 200):
    """count lines: ids on most, a line number on every seventh; every third line seeded and
    sampled, every fifth greedy, the rest sampled unseeded."""
    path = tmp_path / "in.jsonl"
    rows = []
    for i in range(count):
        row = {"id": f"q{i}", "prompt": PROMPTS[i % len(PROMPTS)]}
        if i % 7 == 3:
            del row["id"]
        if i % 3 == 0:
            row |= {"seed": 1000 + i, "temperature": 0.8}
        elif i % 5 == 0:
            row["temperature"] = 0.0
        rows.append(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, [r.get("id", n) for n, r in enumerate(rows, 1)], rows


def test_every_line_is_answered_once_in_order_and_lines_share_passes(tmp_path):
    path, ids, rows = lines_file(tmp_path)
    out = tmp_path / "out.jsonl"
    result = invoke("batch", "story", path, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    got = records(out)
    assert [r["id"] for r in got] == ids
    for r in got:
        assert r["text"] and r["finish_reason"] in ("stop", "length")
        assert r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"]
        assert r["timings"]["nfe"] >= 1 and r["options"]["max_new_tokens"] == 8
    # Lines with equal options (all but the seed) were denoised together.
    assert max(r["timings"]["batch_size"] for r in got) > 8
    assert "answered 200 of 200 lines" in result.output


def test_a_job_stopped_midway_resumes_without_a_duplicate_or_a_rewrite(tmp_path):
    path, ids, _ = lines_file(tmp_path, 60)
    out = tmp_path / "out.jsonl"
    assert invoke("batch", "story", path, "-o", out, *FAST, "--limit", 25).exit_code == 0
    first = out.read_bytes()
    assert [r["id"] for r in records(out)] == ids[:25]
    # A run killed mid-write leaves half a line: it is cut off and that line answered again.
    out.write_bytes(first + b'{"id": "q25", "text": "Once up')
    result = invoke("batch", "story", path, "-o", out, *FAST, "--limit", 10)
    assert result.exit_code == 0, result.output
    assert "incomplete last line" in result.output and "25 already in" in result.output
    assert out.read_bytes().startswith(first), "lines written before are never rewritten"
    assert [r["id"] for r in records(out)] == ids[:35]
    assert invoke("batch", "story", path, "-o", out, *FAST).exit_code == 0
    assert [r["id"] for r in records(out)] == ids
    again = invoke("batch", "story", path, "-o", out, *FAST)
    assert again.exit_code == 0 and "answered 0 of 0 lines" in again.output
    assert [r["id"] for r in records(out)] == ids


def test_bad_lines_are_reported_by_line_number_and_the_job_goes_on(tmp_path):
    path = tmp_path / "in.jsonl"
    good = json.dumps({"prompt": "Once upon a time"})
    path.write_text(
        "\n".join(
            [
                good,  # 1
                "{not json",  # 2
                json.dumps({"prompt": "x", "stepz": 3}),  # 3: unknown field
                json.dumps({"prompt": "x", "steps": "3"}),  # 4: a string where a number goes
                json.dumps({"prompt": "x", "temperature": 99}),  # 5: out of range
                json.dumps({"prompt": "x", "template": "a {{2}}"}),  # 6: two sources
                json.dumps({"id": 1, "prompt": "x"}),  # 7: repeats line 1's id
                "",  # 8: blank, skipped
                json.dumps({"prompt": "x", "preset": "quick"}),  # 9
                json.dumps({"template": "Once {{4}} end.", "max_new_tokens": 9}),  # 10
                json.dumps([1, 2]),  # 11
                good,  # 12
            ]
        )
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    result = invoke("batch", "story", path, "-o", out, *FAST)
    assert result.exit_code == 1, result.output
    got = records(out)
    assert [r["id"] for r in got] == [1, 2, 3, 4, 5, 6, 1, 9, 10, 11, 12]
    errors = {r["error"]["line"]: r["error"]["field"] for r in got if "error" in r}
    assert errors == {2: None, 3: "stepz", 4: "steps", 5: "temperature", 6: "template", 7: "id", 9: "preset"} | {
        10: "max_new_tokens",
        11: None,
    }
    assert "text" in got[0] and "text" in got[-1]
    text = " ".join(result.output.split())
    for expected in ("line 2: invalid JSON", "line 3: stepz: unknown field", "line 4: steps:", "line 9: preset:"):
        assert expected in text, text
    assert "9 lines failed" in text
    # Resuming skips the failed lines too (their error is the answer), and still says they failed.
    again = invoke("batch", "story", path, "-o", out, *FAST)
    assert again.exit_code == 1 and len(records(out)) == len(got)


def test_a_line_answers_what_unmask_run_json_prints(tmp_path):
    cases = [
        ({"prompt": "Once upon a time", "seed": 7, "temperature": 0.8}, ["--seed", 7, "--temperature", 0.8]),
        ({"prompt": "A little fox", "seed": 3, "temperature": 0.8}, ["--seed", 3, "--temperature", 0.8]),
        ({"prompt": "The dog ran", "temperature": 0.0}, ["--temperature", 0.0]),
        ({"prompt": "One day, a girl", "seed": 11, "temperature": 0.8, "preset": "fast"}, ["--seed", 11, "--fast"]),
    ]
    path = tmp_path / "in.jsonl"
    # Each case among unseeded neighbours, so it is batched with other rows.
    filler = [{"prompt": p} for p in PROMPTS]
    rows = [row for case, _ in cases for row in (*filler, case)]
    rows.append({"id": "t", "template": "Once upon a time, {{6}} The end.", "seed": 5, "temperature": 0.8})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    assert invoke("batch", "story", path, "-o", out, *FAST).exit_code == 0
    got = records(out)
    answers = [got[(k + 1) * (len(filler) + 1) - 1] for k in range(len(cases))]
    assert any(a["timings"]["batch_size"] > 1 for a in answers)
    for (case, flags), answer in zip(cases, answers):
        if case.get("preset"):
            flags = [*flags, "--temperature", 0.8]
        ran = invoke("run", "story", case["prompt"], "--json", *FAST, *flags)
        assert ran.exit_code == 0, ran.output
        alone = json.loads(ran.output)
        assert answer["text"] == alone["text"], case
        assert answer["finish_reason"] == alone["finish_reason"]
        assert answer["usage"]["prompt_tokens"] == alone["prompt_tokens"]
        assert answer["usage"]["completion_tokens"] == alone["completion_tokens"]
        assert answer["timings"]["nfe"] == alone["nfe"] and answer["options"] == alone["options"]
    filled = invoke("infill", "story", rows[-1]["template"], "--json", "--steps", 4, "--seed", 5, "--temperature", 0.8)
    assert filled.exit_code == 0, filled.output
    assert got[-1]["id"] == "t" and got[-1]["text"] == json.loads(filled.output)["text"]


def test_ray_asked_without_ray_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    path, _, _ = lines_file(tmp_path, 3)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if not installed
    for args in (["batch", "story", path, "-o", tmp_path / "out.jsonl", "--ray"], ["serve", "--ray"]):
        result = invoke(*args)
        assert result.exit_code == 1
        text = " ".join(result.output.split())
        assert text.startswith("error: --ray needs Ray") and "pip install 'unmask[ray]'" in text, text
        assert "Traceback" not in result.output
    assert not (tmp_path / "out.jsonl").exists() or not records(tmp_path / "out.jsonl")


def test_the_core_imports_without_ray():
    import subprocess

    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import unmask.cli, unmask.scale.lines, unmask.server, unmask.engine\n"
        "assert not any(m == 'ray' or m.startswith('ray.') for m in sys.modules if sys.modules[m])\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("bad", ["--replicas", "--batch-size"])
def test_ray_counts_are_at_least_one(tmp_path, bad):
    result = invoke("batch", "story", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl", bad, 0)
    assert result.exit_code == 2 and bad in result.output
