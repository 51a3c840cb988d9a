"""`unmask create NAME -f FILE` and `unmask cp SRC DST`: named models, as Ollama's Modelfile makes them.

A named model is a base checkpoint plus decoding parameters, a system prompt and a chat template,
kept as one `model.json` in `$UNMASK_HOME/models/NAME/` (`~/.unmask/models` by default); no weight
is copied. The loader applies it (`unmask.loading`); `list`, `show` and `rm` are in hub.py.

Notable features:
- The file: `FROM <model>`, `PARAMETER <option> <value>` (any field of `GenerationOptions`),
  `SYSTEM <text>`, `TEMPLATE <jinja>` (both also as `\"\"\"` blocks over several lines) and `#`
  comments. Every mistake is one line, `FILE:LINE: what is wrong`.
- Everything is checked before anything is written: each value against its field, the base (it
  must exist here and be runnable), the template's syntax, and the parameters together with the
  base's own defaults through the engine's resolver, so a model that is created also runs.
- The base is resolved once, at create time: an embedded model by name, anything else (a folder,
  a pulled hub snapshot) by its folder; `FROM` another named model takes over its base and
  settings, so removing that model later breaks nothing.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import typer

from .. import checkpoints
from ..checkpoints import ALIASES
from . import app
from .common import CliError, guard

DEFAULT_FILE = "Modelfile"
INSTRUCTIONS = ("FROM", "PARAMETER", "SYSTEM", "TEMPLATE")
QUOTES = '"""'
NULLS = ("none", "null")  # a PARAMETER value that unsets the base's default, where the field allows it
FORMAT_VERSION = 1  # of model.json


class ModelfileError(Exception):
    """A mistake in a Modelfile, at a line (0: not at any one line)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


@dataclass
class Modelfile:
    base: str = ""
    base_line: int = 0
    parameters: dict = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # parameter -> its line
    system: str | None = None
    template: str | None = None
    template_line: int = 0


# ---------------------------------------------------------------------------------------------
# parsing


def parse_modelfile(text: str) -> Modelfile:
    """The instructions of a Modelfile; raises `ModelfileError` at the first mistake."""
    out = Modelfile()
    seen: dict[str, int] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        number, stripped = i + 1, lines[i].strip()
        i += 1
        if not stripped or stripped.startswith("#"):
            continue
        word, _, rest = stripped.partition(" ") if " " in stripped else stripped.partition("\t")
        instruction, rest = word.upper(), rest.strip()
        if instruction not in INSTRUCTIONS:
            raise ModelfileError(number, f"unknown instruction {word!r}; expected one of {', '.join(INSTRUCTIONS)}")
        if instruction != "PARAMETER":
            if instruction in seen:
                raise ModelfileError(number, f"{instruction} given twice (first on line {seen[instruction]})")
            seen[instruction] = number
        if instruction in ("SYSTEM", "TEMPLATE") and rest.startswith(QUOTES):
            value, i = quoted_block(lines, i, rest[len(QUOTES) :], number)
        else:
            value = unquote(rest)
        if instruction == "FROM":
            if not value:
                raise ModelfileError(
                    number, "FROM needs a model: an embedded name, a named model, a folder or a hub id"
                )
            out.base, out.base_line = value, number
        elif instruction == "PARAMETER":
            name, value = parameter(rest, number)
            if name in out.lines:
                raise ModelfileError(number, f"PARAMETER {name} given twice (first on line {out.lines[name]})")
            out.parameters[name], out.lines[name] = value, number
        elif not rest:
            raise ModelfileError(number, f'{instruction} needs its text (write {instruction} "" for none)')
        elif instruction == "SYSTEM":
            out.system = value
        else:
            out.template, out.template_line = value, number
    if not out.base:
        raise ModelfileError(1, "no FROM line; a Modelfile starts with FROM <model>, e.g. FROM story")
    return out


def quoted_block(lines: list[str], i: int, first: str, number: int) -> tuple[str, int]:
    """The text of a \"\"\" block opened on line `number` (after the quotes: `first`) and the index
    of the line after it. A newline right after the opening or before the closing quotes is not
    part of the text."""
    if QUOTES in first:
        text, _, after = first.partition(QUOTES)
        end = i
    else:
        pieces = [first]
        while i < len(lines) and QUOTES not in lines[i]:
            pieces.append(lines[i])
            i += 1
        if i == len(lines):
            raise ModelfileError(number, f"unterminated {QUOTES} block (opened here)")
        last, _, after = lines[i].partition(QUOTES)
        pieces.append(last)
        text, end = "\n".join(pieces), i + 1
    if after.strip():
        raise ModelfileError(end, f"unexpected text after the closing {QUOTES}: {after.strip()!r}")
    return text.removeprefix("\n").removesuffix("\n"), end


def unquote(text: str) -> str:
    """`"a b"` -> `a b`: one pair of double quotes around a value is not part of it."""
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def parameter(rest: str, number: int):
    """'steps 8' -> ('steps', 8): the option and its value, checked against its field."""
    from typing import Annotated

    from pydantic import TypeAdapter, ValidationError

    from ..options import GenerationOptions

    name, _, raw = rest.partition(" ") if " " in rest else rest.partition("\t")
    raw = unquote(raw.strip())
    if not name:
        raise ModelfileError(number, "PARAMETER needs an option and a value, e.g. PARAMETER steps 32")
    fields = GenerationOptions.model_fields
    if name not in fields:
        raise ModelfileError(number, f"PARAMETER {name}: not a decoding option (the options: {', '.join(fields)})")
    if not raw:
        raise ModelfileError(number, f"PARAMETER {name} needs a value")
    # Validated as a request's field is, bounds included: "8" -> 8, "0.5" -> 0.5, "true" -> True.
    adapter = TypeAdapter(Annotated[fields[name].annotation, fields[name]])
    try:
        return name, adapter.validate_python(raw)
    except ValidationError as err:
        problem = err.errors()[0]["msg"]
    if raw.lower() in NULLS:
        try:
            return name, adapter.validate_python(None)
        except ValidationError:
            problem = "cannot be unset"
    raise ModelfileError(number, f"PARAMETER {name}: {problem} (got {raw!r})")


# ---------------------------------------------------------------------------------------------
# checking and storing


def check_name(name: str) -> None:
    """A new named model's name: spelled as names are, and not an embedded model's or an alias."""
    if not checkpoints.valid_name(name):
        raise CliError(
            f"{name!r} is not a model name: use lowercase letters, digits, '-', '_', '.' and ':', "
            "starting with a letter or digit (at most 128 characters)"
        )
    if name in checkpoints.embedded_names():
        raise CliError(f"{name} is the name of an embedded model; choose another name")
    if name in ALIASES:
        raise CliError(f"{name} is the alias of {ALIASES[name]}; choose another name")


def base_of(ref: str, origin: Path) -> tuple[dict, dict, Path]:
    """(where the base is, as model.json stores it; what a named base passes on; its folder).
    A relative folder is looked up from `origin` (the Modelfile's folder), as Ollama does."""
    if ref in checkpoints.embedded_names():
        return {"base": ref, "base_source": "embedded"}, {}, checkpoints.folder_of(ref)
    other = checkpoints.named_model(ref)
    if other is not None:
        folder = checkpoints.folder_of(ref)  # says so when its base is gone
        inherited = {k: other.get(k) for k in ("parameters", "system", "template")}
        return {"base": other.get("base"), "base_source": other.get("base_source")}, inherited, folder
    near = Path(ref).expanduser()
    near = near if near.is_absolute() else origin / near
    folder = near if (near / "config.json").is_file() else checkpoints.folder_of(ref)
    source = checkpoints.source_of(folder)
    base = folder.name if source == "embedded" else str(folder.resolve())
    return {"base": base, "base_source": source}, {}, folder


def check_template(template: str) -> None:
    """The template must parse as the tokenizer's environment parses chat templates."""
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    try:
        env.parse(template)
    except jinja2.TemplateSyntaxError as err:
        raise ValueError(f"not a valid jinja template: {err.message} (its line {err.lineno})") from None


def problem_field(err: Exception) -> tuple[str | None, str]:
    """(options field, message) of a resolver error."""
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or None
        message = first.get("msg", "invalid value").removeprefix("Value error, ")
    else:
        where, message = getattr(err, "field", None), str(err)
    if where is None or message.startswith(f"{where}: "):
        head, sep, rest = message.partition(": ")
        if sep and head.isidentifier():
            return head, rest
    return where, message


def build(mf: Modelfile, origin: Path) -> dict:
    """The model.json of a Modelfile, every part checked; raises `ModelfileError`."""
    from pydantic import ValidationError

    from ..engine import GenerationOptions, ModelLoadError, RequestError, resolve

    try:
        where, inherited, folder = base_of(mf.base, origin)
    except (ModelLoadError, OSError) as err:
        raise ModelfileError(mf.base_line, f"FROM {mf.base}: {err}") from None
    info = checkpoints.describe(folder)
    if not info.supported or not info.complete:
        why = info.reason or "no readable safetensors weights (an unfinished pull?)"
        raise ModelfileError(mf.base_line, f"FROM {mf.base}: {why}")
    system = mf.system if mf.system is not None else inherited.get("system")
    template = mf.template if mf.template is not None else inherited.get("template")
    if (mf.system or mf.template) and not info.tokenizer:
        what = "SYSTEM" if mf.system else "TEMPLATE"
        raise ModelfileError(mf.base_line, f"FROM {mf.base}: has no tokenizer, so it cannot take a {what}")
    if mf.template:
        try:
            check_template(mf.template)
        except ValueError as err:
            raise ModelfileError(mf.template_line, f"TEMPLATE: {err}") from None
    parameters = (inherited.get("parameters") or {}) | mf.parameters
    length = parameters.get("max_new_tokens") or info.defaults.get("max_new_tokens")
    length = length or GenerationOptions.model_fields["max_new_tokens"].default
    block = mf.parameters.get("block_length")
    if block and length % block:
        # The resolver would quietly run one block instead; a block written here is meant to run.
        raise ModelfileError(
            mf.lines["block_length"], f"PARAMETER block_length: {block} must divide max_new_tokens ({length})"
        )
    # What a request that sets nothing would run with on this model: the engine's resolver decides.
    try:
        resolve(replace(info, defaults=info.defaults | parameters), {})
    except (RequestError, ValidationError, ValueError) as err:
        name, message = problem_field(err)
        if name in mf.lines:
            raise ModelfileError(mf.lines[name], f"PARAMETER {name}: {message}") from None
        detail = f"{name}: {message}" if name else message
        raise ModelfileError(mf.base_line, f"FROM {mf.base}: with these parameters, {detail}") from None
    return {
        "format": FORMAT_VERSION,
        "from": mf.base,
        **where,
        "parameters": parameters,
        "system": system,
        "template": template,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_model(name: str, spec: dict) -> Path:
    """Store a named model (replacing one of that name); model.json appears whole or not at all."""
    home = checkpoints.named_models_dir() / name
    home.mkdir(parents=True, exist_ok=True)
    partial = home / "model.json.partial"
    partial.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, home / "model.json")
    return home


def described(name: str, spec: dict) -> str:
    """'story: steps=8 max_new_tokens=16, a system prompt'."""
    settings = " ".join(f"{k}={v}" for k, v in spec["parameters"].items())
    parts = [settings] if settings else []
    parts += ["a system prompt"] if spec.get("system") else []
    parts += ["a chat template"] if spec.get("template") else []
    return spec["from"] + (": " + ", ".join(parts) if parts else "")


# ---------------------------------------------------------------------------------------------
# the verbs


@app.command()
def create(
    name: str = typer.Argument(..., help="The new model's name (lowercase letters, digits, - _ . :)."),
    file: Path = typer.Option(Path(DEFAULT_FILE), "--file", "-f", help="The Modelfile (FROM, PARAMETER, SYSTEM, ...)."),
) -> None:
    """Create (or replace) a named model from a Modelfile: a base model, parameters, a system prompt."""

    def go() -> None:
        check_name(name)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CliError(f"{file}: no such file; write a Modelfile (e.g. FROM story) or pass -f FILE") from None
        except UnicodeDecodeError:
            raise CliError(f"{file}: not a UTF-8 text file") from None
        try:
            spec = build(parse_modelfile(text), file.resolve().parent)
        except ModelfileError as err:
            raise CliError(f"{file}:{err.line}: {err}") from None
        existed = checkpoints.named_home(name) is not None
        home = write_model(name, spec)
        verb = "replaced" if existed else "created"
        typer.echo(f"{verb} {name} from {described(name, spec)} ({home})")

    guard(go)


@app.command()
def cp(
    source: str = typer.Argument(..., help="A named model, or any model (embedded, pulled, a folder) to name."),
    destination: str = typer.Argument(..., help="The new named model."),
) -> None:
    """Copy a named model, or give any model a name (a named model FROM it, with no parameters)."""

    def go() -> None:
        check_name(destination)
        if checkpoints.named_home(destination) is not None:
            raise CliError(f"{destination} already exists; remove it first with `unmask rm {destination}`")
        home = checkpoints.named_home(source)
        if home is not None:
            target = checkpoints.named_models_dir() / destination
            shutil.copytree(home, target)
            typer.echo(f"copied {source} to {destination} ({target})")
            return
        try:
            spec = build(Modelfile(base=source, base_line=1), Path.cwd())
        except ModelfileError as err:
            raise CliError(str(err).removeprefix(f"FROM {source}: ")) from None
        target = write_model(destination, spec)
        typer.echo(f"created {destination} from {source} ({target})")

    guard(go)
