"""The animated GIF export (issue 17): a run downloads as a GIF89a that loops, with one frame per
step shown, the canvas's size, and the run's settings and seed in its Comment Extension. The file
is read here by a small GIF parser of our own (blocks, then LZW), and by Chromium as an image.
Real Chromium, a real server, the real story model; at 1400x900 and 390x844.
"""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET

import pytest

from .conftest import DESKTOP, PHONE, SCREENSHOTS
from .test_finish import run_now, run_value
from .test_studio import PROMPT, dial, settle


def sub_blocks(data: bytes, at: int) -> tuple[bytes, int]:
    """The data of the sub-blocks starting at `at` (a length byte, the bytes; 0 ends), and where they end."""
    out = bytearray()
    while data[at]:
        out += data[at + 1 : at + 1 + data[at]]
        at += 1 + data[at]
    return bytes(out), at + 1


def lzw_decode(code: bytes, min_size: int, count: int) -> list[int]:
    """GIF LZW: codes of min_size+1 to 12 bits, least significant bit first; clear and end codes."""
    clear, end = 1 << min_size, (1 << min_size) + 1
    out: list[int] = []
    acc = nbits = pos = 0
    size, table, prev = min_size + 1, [], None
    while True:
        while nbits < size:
            if pos >= len(code):
                raise AssertionError("the LZW data ended without an end code")
            acc |= code[pos] << nbits
            nbits, pos = nbits + 8, pos + 1
        c, acc, nbits = acc & ((1 << size) - 1), acc >> size, nbits - size
        if c == clear:
            table = [[i] for i in range(clear)] + [[], []]
            size, prev = min_size + 1, None
            continue
        if c == end:
            break
        if prev is None:
            entry = table[c]
        else:
            entry = table[c] if c < len(table) else prev + prev[:1]
            assert c <= len(table), f"code {c} past the table ({len(table)})"
            if len(table) < 4096:
                table.append(prev + entry[:1])
        out += entry
        prev = entry
        if len(table) == 1 << size and size < 12:
            size += 1
    assert len(out) == count, f"{len(out)} pixels, not {count}"
    return out


def parse_gif(data: bytes) -> dict:
    assert data[:6] == b"GIF89a", data[:6]
    width, height, flags = struct.unpack("<HHB", data[6:11])
    assert flags & 0x80, "a global colour table"
    colours = 2 << (flags & 7)
    at = 13 + 3 * colours
    info = {
        "width": width,
        "height": height,
        "colours": colours,
        "palette": [tuple(data[13 + 3 * i : 16 + 3 * i]) for i in range(colours)],
        "frames": [],
        "delays": [],
        "comments": [],
        "loop": None,
    }
    while True:
        kind = data[at]
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:
            label = data[at + 1]
            body, at = sub_blocks(data, at + 2)
            if label == 0xFE:
                info["comments"].append(body.decode("ascii"))
            elif label == 0xFF and body[:11] == b"NETSCAPE2.0":
                info["loop"] = struct.unpack("<H", body[12:14])[0]
            elif label == 0xF9:
                info["delays"].append(struct.unpack("<H", body[1:3])[0])
            continue
        assert kind == 0x2C, f"unexpected block {kind:#x} at {at}"
        x, y, w, h, local = struct.unpack("<HHHHB", data[at + 1 : at + 10])
        assert (x, y, w, h) == (0, 0, width, height) and not local & 0x80
        min_size = data[at + 10]
        code, at = sub_blocks(data, at + 11)
        pixels = lzw_decode(code, min_size, w * h)
        assert max(pixels) < colours
        info["frames"].append(pixels)
    return info


def gif_of(page, tmp_path, name: str, view: str = "diffuse") -> tuple[dict, bytes]:
    """Click the view's GIF export and parse the file it downloads."""
    with page.expect_download() as info:
        page.click(f"#view-{view} .export button:has-text('GIF')")
    assert info.value.suggested_filename.endswith(".gif")
    info.value.save_as(tmp_path / name)
    data = (tmp_path / name).read_bytes()
    return parse_gif(data), data


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1400x900", "390x844"])
def test_a_run_exports_as_a_looping_gif_with_its_settings_and_seed(page, tmp_path, viewport):
    page.set_viewport_size(viewport)
    page.fill("#view-diffuse .prompt-input", PROMPT)
    dial(page, "diffuse", length=48, steps=24)
    page.fill("#view-diffuse input[aria-label='Seed']", "4321")
    page.locator("#view-diffuse input[aria-label='Seed']").press("Tab")
    settle(page)
    run_now(page)
    start, steps = run_value(page, "run.start"), run_value(page, "run.lastStep")
    gif, data = gif_of(page, tmp_path, "run.gif")
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / f"gif-export-{viewport['width']}.gif").write_bytes(data)

    # One frame per step, the first one all placeholders; each differs from the one before.
    assert len(gif["frames"]) == steps + 1 > 1
    assert all(a != b for a, b in zip(gif["frames"], gif["frames"][1:])), "a frame per step, each a change"
    assert gif["loop"] == 0, "loops for ever"
    assert len(gif["delays"]) == len(gif["frames"]) and gif["delays"][-1] > gif["delays"][0], "the end is held"
    [comment] = gif["comments"]
    meta = json.loads(comment)
    assert meta["seed"] == 4321 and meta["steps"] == steps and meta["model"] == start["model"]
    assert meta["options"] == start["options"] and meta["request"]["seed"] == 4321
    assert meta["frames"] == list(range(steps + 1))

    # Chromium decodes it at the canvas's size, to the pixels parsed here: it draws one of the frames.
    size, drawn = page.evaluate(
        """async bytes => { const url = URL.createObjectURL(new Blob([new Uint8Array(bytes)], { type: 'image/gif' }));
        const img = new Image(); img.src = url; await img.decode();
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        const x = c.getContext('2d'); x.drawImage(img, 0, 0);
        const d = x.getImageData(0, 0, c.width, c.height).data, px = [];
        for (let i = 0; i < d.length; i += 4) px.push(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
        return [[img.naturalWidth, img.naturalHeight], px]; }""",
        list(data),
    )
    assert size == [gif["width"], gif["height"]] and gif["width"] > 300 and gif["height"] > 80
    rgb = [r * 65536 + g * 256 + b for r, g, b in gif["palette"]]
    assert any(drawn == [rgb[i] for i in frame] for frame in gif["frames"]), "Chromium reads the pixels written"
    # The first frame is placeholders, the last one text: more colours of ink in the end.
    assert len(set(gif["frames"][-1])) > len(set(gif["frames"][0]))


def download(page, view: str, button: str, path):
    with page.expect_download() as info:
        page.click(f"#view-{view} .export button:has-text('{button}')")
    info.value.save_as(path)
    return path


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1400x900", "390x844"])
def test_a_long_run_is_sampled_and_every_infill_export_carries_settings_and_seed(
    page, context, studio, tmp_path, viewport
):
    page.set_viewport_size(viewport)
    page.fill("#view-diffuse .prompt-input", PROMPT)
    dial(page, "diffuse", length=128, steps=128)
    settle(page)
    run_now(page)
    steps = run_value(page, "run.lastStep")
    assert steps > 60
    gif, _ = gif_of(page, tmp_path, "long.gif")
    meta = json.loads(gif["comments"][0])
    assert 30 <= len(gif["frames"]) <= 60 == len(meta["frames"])
    assert meta["frames"][0] == 0 and meta["frames"][-1] == steps == meta["steps"]

    page.goto(studio.url + "/#/infill")
    page.click("#view-infill .examples .chip:has-text('Fill a word')")
    page.fill("#view-infill input[aria-label='Seed']", "99")
    page.locator("#view-infill input[aria-label='Seed']").press("Tab")
    settle(page, "infill")
    run_now(page, "infill")
    start = run_value(page, "run.start", "infill")
    gif, _ = gif_of(page, tmp_path, "infill.gif", "infill")
    meta = json.loads(gif["comments"][0])
    assert meta["request"]["template"] and meta["options"] == start["options"]
    assert len(gif["frames"]) == run_value(page, "run.lastStep", "infill") + 1
    seed, model = start["options"]["seed"], start["model"]
    assert seed == 99
    assert meta["seed"] == seed and meta["model"] == model

    # The other exports of an infill run carry them too: HTML replay, animated SVG, JSON.
    replay = context.new_page()
    replay.goto(download(page, "infill", "HTML replay", tmp_path / "infill.html").as_uri())
    settings = json.loads(replay.locator("#settings").text_content())
    assert settings["seed"] == seed and settings["options"] == start["options"] and settings["model"] == model
    assert settings["request"]["template"] == meta["request"]["template"]
    replay.close()
    root = ET.parse(download(page, "infill", "Animated SVG", tmp_path / "infill.svg")).getroot()
    svg_meta = json.loads(root.find("{http://www.w3.org/2000/svg}metadata").text)
    assert svg_meta["seed"] == seed and svg_meta["options"] == start["options"] and svg_meta["model"] == model
    data = json.loads(download(page, "infill", "JSON", tmp_path / "infill.json").read_text())
    assert data["seed"] == seed and data["options"] == start["options"] and data["model"] == model
