"""`unmask run` and `unmask infill`: generate once (or interactively), the canvas drawn live."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.live import Live

from . import app
from .common import DEFAULT_MODEL, CliError, Threads, build_options, guard, load_model, set_threads, stdin_text
from .live import CanvasView, GridView, mask_width

Steps = Annotated[Optional[int], typer.Option("--steps", help="Denoising steps (model passes).")]
MaxNew = Annotated[Optional[int], typer.Option("--max-new-tokens", "-n", help="Tokens to generate.")]
BlockLength = Annotated[Optional[int], typer.Option("--block-length", help="Semi-autoregressive block size.")]
Algorithm = Annotated[
    Optional[str],
    typer.Option("--algorithm", help="origin, maskgit_plus, topk_margin, entropy, low_confidence or random."),
]
Temperature = Annotated[Optional[float], typer.Option("--temperature", help="0 = greedy.")]
TopP = Annotated[Optional[float], typer.Option("--top-p", help="Nucleus sampling mass (0, 1].")]
TopK = Annotated[Optional[int], typer.Option("--top-k", help="Sample among the k likeliest tokens.")]
Threshold = Annotated[
    Optional[float], typer.Option("--threshold", help="Fast-dLLM: commit every position at least this sure (0, 1].")
]
Spread = Annotated[
    Optional[int], typer.Option("--spread", help="Keep tokens committed in one step more than N apart (0 = off).")
]
Remask = Annotated[
    Optional[float],
    typer.Option(
        "--remask", help="Decode again earlier tokens of the block the model now gives less than this probability."
    ),
]
StepsPerBlock = Annotated[
    Optional[int], typer.Option("--steps-per-block", min=1, help="Block diffusion: denoising passes per block.")
]
EditThreshold = Annotated[
    Optional[float],
    typer.Option(
        "--edit-threshold",
        help="LLaDA2.1 token editing: replace a written token the model is surer of another than this.",
    ),
]
MaxPostSteps = Annotated[
    Optional[int], typer.Option("--max-post-steps", min=0, help="Token editing: passes after a block's last mask.")
]
MinCommit = Annotated[
    Optional[int], typer.Option("--min-commit", min=1, help="LLaDA2: tokens each pass commits at least.")
]
SubBlock = Annotated[
    Optional[int],
    typer.Option("--sub-block-length", min=1, help="Fast-dLLM v2: sub-blocks decoded in turn in a block."),
]
Cache = Annotated[Optional[str], typer.Option("--cache", help="KV cache: none, prefix or dual (needs --block-length).")]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Seed for sampling.")]
Fast = Annotated[bool, typer.Option("--fast", help="Preset: a quarter of the steps, threshold decoding.")]
Balanced = Annotated[bool, typer.Option("--balanced", help="Preset: half the steps.")]
Best = Annotated[bool, typer.Option("--best", help="Preset: one step per token.")]
NoLive = Annotated[bool, typer.Option("--no-live", help="Print only the result.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object (a line per puzzle for Sudoku).")]
Dtype = Annotated[str, typer.Option("--dtype", help="auto, float32, bfloat16 or float16.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")]
Quantize = Annotated[
    Optional[str], typer.Option("--quantize", help="int8 or int4: quantize the weights as they load (less memory).")
]
Ctx = Annotated[
    Optional[int],
    typer.Option("--ctx", "-c", min=1, help="Context limit in tokens (prompt + canvas); default: the model's."),
]
Factor = Annotated[Optional[float], typer.Option("--factor", help="Fast-dLLM factor-based parallel decoding.")]
AlgTemp = Annotated[Optional[float], typer.Option("--alg-temp", help="Dream: sample positions by confidence.")]
Eps = Annotated[Optional[float], typer.Option("--eps", help="Dream: final timestep of linspace(1, eps).")]
CfgScale = Annotated[Optional[float], typer.Option("--cfg-scale", help="Classifier-free guidance (LLaDA).")]
Recipe = Annotated[
    Optional[str], typer.Option("--recipe", help="Whose schedule and quirks: dream, llada or fast-dllm.")
]


def decoding_flags(params: dict) -> dict:
    """The decoding options among a command's parameters (None = not given), by options name:
    a verb's flags are named as GenerationOptions names its fields."""
    from ..options import GenerationOptions

    return {k: v for k, v in params.items() if k in GenerationOptions.model_fields}


def check_fits(model, canvas, options, ctx: int | None) -> None:
    """Prompt plus canvas within the model's context (and --ctx), as the server checks it."""
    from ..engine import check_context

    length_field = "template" if canvas.is_infill else "max_new_tokens"
    check_context(model, len(canvas.prompt_ids), options.max_new_tokens, ctx, "prompt", length_field)


def require_text(text: str | None, example: str) -> str:
    if text is None or not text.strip():
        raise CliError(f"the prompt is empty; give some text, e.g. {example}")
    return text


def pick_preset(fast: bool, balanced: bool, best: bool) -> str | None:
    chosen = [name for name, on in (("fast", fast), ("balanced", balanced), ("best", best)) if on]
    if len(chosen) > 1:
        raise CliError("choose at most one of --fast, --balanced and --best")
    return chosen[0] if chosen else None


def stream_region(model, canvas, options, view, live: bool, console: Console):
    """Denoise one canvas, feeding the view every step; returns its Completion."""
    from ..engine import complete

    if not live:
        return complete(model, canvas, options, view.apply if view is not None else None)
    # Refreshed by hand after every step: rich's auto-refresh thread would render the view
    # concurrently, and it intermittently aborted the process at exit ("terminate called
    # without an active exception", SIGABRT) while native code was still in use.
    with Live(view, console=console, auto_refresh=False, transient=False) as screen:

        def shown(event) -> None:
            view.apply(event)
            screen.refresh()

        completion = complete(model, canvas, options, shown)
        if isinstance(view, CanvasView):
            view.finish(completion)
        else:
            view.done = True
        screen.refresh()
    return completion


def prompt_canvas(model, text: str, chat: bool):
    """A chat model answers the text as a user turn; a completion model continues it."""
    from ..engine import Canvas, chat_or_prompt_ids, text_canvas

    if chat:
        return Canvas(chat_or_prompt_ids(model, messages=[{"role": "user", "content": text}]))
    return text_canvas(model, text)


def canvas_view(model, canvas, options, shown_prompt: str) -> CanvasView:
    """The live view of a canvas: the prompt as the user wrote it, then the region."""
    region = canvas.region or [model.ids.mask] * options.max_new_tokens
    starts, pos = {}, 0
    for k, (fixed, n) in enumerate(canvas.segments or [(None, len(region))]):
        if fixed is None and k in canvas.leads:
            starts[pos] = canvas.leads[k]
        pos += n
    width = mask_width(model.tokenizer, canvas.prompt_ids)
    return CanvasView(model, region, shown_prompt, planned=options.total_steps, leads=starts, width=width)


def finish(model, canvas, options, live: bool, console: Console, shown_prompt: str) -> dict:
    view = canvas_view(model, canvas, options, shown_prompt) if live else None
    c = stream_region(model, canvas, options, view, live, console)
    return {
        "text": c.text,
        "finish_reason": c.finish_reason,
        "nfe": c.passes,
        "steps": options.total_steps,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "revoked": c.revocations,
        "elapsed": round(c.elapsed, 4),
        "tokens_per_second": round(c.tokens_per_second, 1) if c.elapsed > 0 else None,
        "options": options.model_dump(exclude_defaults=True),
    }


def emit(
    result: dict, model_name: str, prompt: str, as_json: bool, live: bool, console: Console, completion: bool
) -> None:
    if as_json:
        print(json.dumps({"model": model_name, "prompt": prompt} | result))
    elif not live:
        print((prompt if completion else "") + result["text"])


def is_grid(model) -> bool:
    return model.config.get("model_type") == "grid"


def live_wanted(no_live: bool, as_json: bool, console: Console) -> bool:
    # A pipe gets only the result, as with --no-live.
    return not (no_live or as_json) and console.is_terminal


@app.command()
def run(
    model: Annotated[
        str, typer.Argument(help="Embedded name (story, sudoku, web), checkpoint folder, or hub id/alias.")
    ] = DEFAULT_MODEL,
    prompt: Annotated[
        Optional[str], typer.Argument(help="The prompt; for Sudoku a puzzle, or '-' for one per stdin line.")
    ] = None,
    steps: Steps = None,
    max_new_tokens: MaxNew = None,
    block_length: BlockLength = None,
    algorithm: Algorithm = None,
    temperature: Temperature = None,
    top_p: TopP = None,
    top_k: TopK = None,
    threshold: Threshold = None,
    factor: Factor = None,
    spread: Spread = None,
    remask: Remask = None,
    steps_per_block: StepsPerBlock = None,
    edit_threshold: EditThreshold = None,
    max_post_steps: MaxPostSteps = None,
    min_commit: MinCommit = None,
    sub_block_length: SubBlock = None,
    cache: Cache = None,
    alg_temp: AlgTemp = None,
    eps: Eps = None,
    cfg_scale: CfgScale = None,
    recipe: Recipe = None,
    seed: Seed = None,
    fast: Fast = False,
    balanced: Balanced = False,
    best: Best = False,
    no_live: NoLive = False,
    as_json: AsJson = False,
    givens: Annotated[int, typer.Option("--givens", min=17, max=80, help="Sudoku: givens in a generated puzzle.")] = 36,
    ctx: Ctx = None,
    threads: Threads = "auto",
    dtype: Dtype = "auto",
    device: Device = "auto",
    quantize: Quantize = None,
) -> None:
    """Generate from a prompt, or chat interactively when none is given (like `ollama run`).

    The canvas is drawn live: dots are masked positions, highlighted tokens were committed by the
    latest step. Completion models (story) continue the prompt; chat models answer it.
    """
    flags = decoding_flags(locals())

    def body() -> None:
        console = Console()
        preset = pick_preset(fast, balanced, best)
        set_threads(threads)
        m = load_model(model, dtype, device, quantize=quantize)
        if is_grid(m):
            return run_sudoku(m, model, prompt, flags, givens, seed, no_live, as_json, console)
        text = prompt if prompt is not None else stdin_text()
        if text is None:
            from .chat import chat_loop

            return chat_loop(m, model, flags, preset, console, ctx)
        chat = m.chat
        canvas = prompt_canvas(m, require_text(text, f'unmask run {model} "Once upon a time"'), chat)
        options = build_options(m, flags, preset, canvas)
        check_fits(m, canvas, options, ctx)
        live = live_wanted(no_live, as_json, console)
        # A model that declares what it writes (web: "output": "svg") answers its request, like a
        # chat model, so `> page.html` gets the page alone.
        answers = chat or bool(m.defaults.get("output"))
        result = finish(m, canvas, options, live, console, "" if answers else text)
        emit(result, model, text, as_json, live, console, completion=not answers)

    guard(body)


@app.command()
def infill(
    model: Annotated[str, typer.Argument(help="Model name, folder or hub id.")],
    template: Annotated[
        Optional[str], typer.Argument(help="Text with gaps written {{N}} (N tokens); '-' or none reads stdin.")
    ] = None,
    steps: Steps = None,
    block_length: BlockLength = None,
    algorithm: Algorithm = None,
    temperature: Temperature = None,
    top_p: TopP = None,
    top_k: TopK = None,
    threshold: Threshold = None,
    factor: Factor = None,
    spread: Spread = None,
    remask: Remask = None,
    steps_per_block: StepsPerBlock = None,
    edit_threshold: EditThreshold = None,
    max_post_steps: MaxPostSteps = None,
    min_commit: MinCommit = None,
    sub_block_length: SubBlock = None,
    alg_temp: AlgTemp = None,
    eps: Eps = None,
    cfg_scale: CfgScale = None,
    recipe: Recipe = None,
    seed: Seed = None,
    fast: Fast = False,
    balanced: Balanced = False,
    best: Best = False,
    no_live: NoLive = False,
    as_json: AsJson = False,
    ctx: Ctx = None,
    threads: Threads = "auto",
    dtype: Dtype = "auto",
    device: Device = "auto",
    quantize: Quantize = None,
) -> None:
    """Fill the gaps of a template, keeping every character outside them.

    Example: unmask infill story "Once upon a time, a fox lived in a den. {{40}} And the fox was never lonely again."
    """
    flags = decoding_flags(locals())

    def body() -> None:
        from ..engine import infill_canvas

        console = Console()
        text = template if template not in (None, "-") else stdin_text()
        if not text:
            raise CliError("give a template with gaps, e.g. 'Once upon a time {{40}} The end.'")
        preset = pick_preset(fast, balanced, best)
        set_threads(threads)
        m = load_model(model, dtype, device, quantize=quantize)
        canvas = infill_canvas(m, text)
        options = build_options(m, flags, preset, canvas)
        check_fits(m, canvas, options, ctx)
        live = live_wanted(no_live, as_json, console)
        result = finish(m, canvas, options, live, console, canvas.prefix_text)
        result["text"] = canvas.prefix_text + result["text"]
        if as_json:
            print(json.dumps({"model": model, "template": text} | result))
        elif not live:
            print(result["text"])

    guard(body)


def run_sudoku(m, name, prompt, flags, givens, seed, no_live, as_json, console) -> None:
    """Solve puzzles by confidence-ordered unmasking (or --algorithm random, to see why order matters)."""
    import random

    from ..tasks.sudoku import is_solution, make_puzzle, parse_puzzle, random_solution

    def parsed(text: str, where: str = "") -> str:
        try:
            return parse_puzzle(text)
        except ValueError as err:
            raise CliError(f"puzzle{where}: {err}") from None

    if prompt == "-":
        lines = sys.stdin.read().splitlines()
        puzzles = [parsed(line, f" (line {k})") for k, line in enumerate(lines, 1) if line.strip()]
        if not puzzles:
            raise CliError("no puzzles on standard input (one per line, 81 cells, 0 or . for blanks)")
    elif prompt is not None:
        puzzles = [parsed(prompt)]
    else:
        rng = random.Random(seed if seed is not None else time.time_ns())
        puzzles = [make_puzzle(random_solution(rng), givens, rng)]
    from ..engine import puzzle_canvas

    canvases = [puzzle_canvas(m, p) for p in puzzles]
    digit_of = {m.tokenizer.token_id(str(d)): str(d) for d in range(1, 10)}
    settings = {k: v for k, v in flags.items() if k not in ("max_new_tokens", "block_length")}
    # Steps are planned for the board with the most blanks; the others finish early.
    widest = max(canvases, key=lambda c: c.masked(m.ids.mask, 81))
    options = build_options(m, settings, None, widest)
    live = live_wanted(no_live, as_json, console) and len(puzzles) == 1
    started = time.perf_counter()
    if live:
        board = puzzles[0]
        view = GridView(lambda t: digit_of.get(t, "0"), canvases[0].region, m.ids.mask, lambda g: is_solution(board, g))
        answers = [stream_region(m, canvases[0], options, view, True, console)]
    else:
        from ..engine import Completion

        # One batch for every board; each board's answer is built as for any other canvas.
        result = m.generate([[] for _ in canvases], canvas=[c.region for c in canvases], options=options)
        answers = [Completion(m, c, options) for c in canvases]
        for answer, final in zip(answers, result.sequences):
            answer.finish(final, result.nfe, result.elapsed)
    elapsed = time.perf_counter() - started
    nfe = max(a.passes for a in answers)
    for puzzle, answer in zip(puzzles, answers):
        solution = answer.text
        solved = is_solution(puzzle, solution)
        if as_json:
            print(
                json.dumps(
                    {
                        "model": name,
                        "puzzle": puzzle,
                        "solution": solution,
                        "solved": solved,
                        "algorithm": options.algorithm,
                        "steps": options.total_steps,
                        "nfe": nfe,
                        "elapsed": round(elapsed, 4),
                    }
                )
            )
        elif not live:
            print(solution + ("" if solved else "  (not a valid solution)"))
        elif not solved:
            console.print("[yellow]the grid is not a valid solution[/] (try the default --algorithm low_confidence)")
