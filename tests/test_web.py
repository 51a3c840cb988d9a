"""The web corpus: requests and programs agree, and the checker reads the page, in real Chromium."""

import random
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from unmask.tasks.web import KINDS, Spec, corpus_example, program, random_spec, request
from unmask.tasks.web.checker import Checker, expected, parse_problems
from unmask.tasks.web.programs import element, shells
from unmask.tasks.web.requests import NUMBER_WORDS


def test_the_corpus_is_a_pure_function_of_seed_and_index():
    assert corpus_example(3, 17) == corpus_example(3, 17)
    assert corpus_example(3, 17) != corpus_example(4, 17)


def test_every_kind_and_value_comes_up():
    specs = [random_spec(random.Random(i)) for i in range(3000)]
    assert {s.kind for s in specs} == set(KINDS)
    assert {s.values["z"] for s in specs if s.kind == "atom"} == set(range(1, 19))
    assert all(s.named for s in specs if s.kind not in ("clock",))


def test_no_scene_draws_a_part_in_the_colour_of_the_part_it_sits_on():
    """Black is a colour a request can name: a black clock face then takes white hands, not its
    default black ones."""
    specs = [random_spec(random.Random(i)) for i in range(3000)]
    clocks = [s for s in specs if s.kind == "clock"]
    assert any(s.values["face"] == "black" for s in clocks)
    # Unless the request names both in one colour: then it gets what it asked for.
    assert all(s.values["face"] != s.values["hands"] for s in clocks if "hands" not in s.named)


def test_head_rows_hold_every_value_the_program_takes_from_its_request(tmp_path):
    """The recipe's head rows (every other training step) are the program's own tokens up to its
    last value line, so they teach exactly the values, with nothing of the body."""
    from unmask.train.recipes import web_heads, web_pairs, web_tokenizer

    tokenizer = web_tokenizer(tmp_path)
    heads, pairs = web_heads(tokenizer, 0), web_pairs(tokenizer, 0)
    for i in range(60):
        (req, head), (req_full, answer) = heads(i), pairs(i)
        spec, _, code = corpus_example(0, i)
        assert req == req_full and answer[: len(head)] == head
        text = tokenizer.decode(head)
        assert code.startswith(text.lstrip("\n")) and text.endswith(";") and "const svg" not in text
        value_line = r'^const \w+ = ("[a-z]+"|-?\d+|true|false);$'
        assert re.findall(value_line, text, re.M) == re.findall(value_line, code, re.M) != []
        assert all(str(v) in text for k, v in spec.values.items() if k not in ("z", "shape", "direction"))


def test_the_bohr_shells_of_the_first_18_elements():
    assert shells(1) == [1] and shells(2) == [2] and shells(3) == [2, 1]
    assert shells(10) == [2, 8] and shells(11) == [2, 8, 1] and shells(18) == [2, 8, 8]
    assert element(2) == ("helium", "He", 2) and element(18) == ("argon", "Ar", 22)


def test_requests_name_what_the_program_holds():
    for i in range(400):
        spec, text, code = corpus_example(0, i)
        words = re.findall(r"[a-z0-9']+", text.lower())
        for key in spec.named:
            value = spec.values[key]
            if isinstance(value, str) and key not in ("direction", "shape"):
                assert value in code and (value in words or (value == "gray" and "grey" in words)), (key, text)
        if spec.kind == "atom":
            name, symbol, _ = element(spec.values["z"])
            z = spec.values["z"]
            assert f"const protons = {z};" in code
            assert (
                name in text.lower()
                or {"aluminium": "aluminum", "sulfur": "sulphur"}.get(name, name) in text.lower()
                or str(z) in words
                or NUMBER_WORDS[z] in words
            ), text
        elif spec.kind in ("planets", "balls", "spinner"):
            n = spec.values[{"planets": "planets", "balls": "balls", "spinner": "dots"}[spec.kind]]
            assert str(n) in words or NUMBER_WORDS[n] in words or (n == 1 and "a" in words), text


def test_the_markup_check_names_what_is_wrong():
    code = program(Spec("atom", {"z": 2, "nucleus": "red", "electron": "cyan", "seconds": 4}, frozenset({"z"})))
    assert parse_problems(code) == []
    assert parse_problems(code.replace("</script>", "")) == ["<script> is never closed"]
    assert parse_problems("<div>hello</div>") == ["no <svg> element"]


@pytest.mark.browser
def test_the_checker_passes_every_kind_and_catches_each_kind_of_mistake():
    # Playwright's sync API refuses a thread whose asyncio loop the studio tests' browser holds.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(check_every_kind).result()


def check_every_kind():
    helium = Spec("atom", {"z": 2, "nucleus": "red", "electron": "blue", "seconds": 4}, frozenset({"z", "electron"}))
    code = program(helium)
    assert expected(helium)["counts"]["shells"] == [2]
    with Checker() as checker:
        for kind in KINDS:
            spec = next(s for s in (random_spec(random.Random(i)) for i in range(100)) if s.kind == kind)
            verdict = checker.check(program(spec), spec)
            assert verdict.matches, (kind, request(spec, random.Random(0)), verdict.problems)
        assert checker.check(code, helium).matches
        # One proton, and so one electron, too many, drawn though the text still says helium.
        three = checker.check(code.replace("protons = 2;", "protons = 3;"), helium)
        assert three.renders and not three.matches and "electron: 3 drawn, 2 asked" in three.problems
        red = checker.check(code.replace('electronColor = "blue"', 'electronColor = "red"'), helium)
        assert not red.matches and "electron colour: ['red'] drawn, blue asked" in red.problems
        broken = checker.check(code.replace("Math.cos(a)", "Math.cos(a"), helium)
        assert broken.parses and not broken.renders and any("error" in p for p in broken.problems)
        still = checker.check(code.replace("requestAnimationFrame(frame);\n}", "}"), helium)
        assert still.renders and not still.moves and "nothing moves" in still.problems
        planets = checker.check(code, Spec("planets", {"planets": 2, "star": "gold", "planet": "blue"}, frozenset()))
        assert not planets.matches and "planet: 0 drawn, 2 asked" in planets.problems
