"""`unmask batch --ray`: the lines of a batch job as a Ray Data pipeline, one model per actor.

Notable features:
- The driver reads the input (a local path or any URI pyarrow's filesystems open: s3://, gs://,
  hdfs://, file://), parses it and skips the ids the output already holds (`lines.read_lines`);
  only the lines that can run travel to the actors, as JSON strings (one Arrow schema whatever
  the lines' fields).
- `map_batches` over an actor pool (`--replicas` actors, `--num-cpus` / `--num-gpus` each): an
  actor loads the model once and answers each batch of `--batch-size` lines on its own engine
  (`lines.answer_lines`), so lines share passes inside an actor as they do locally, and a line's
  answer is the one the local engine gives (seeded text included).
- Order: `preserve_order` keeps the blocks in input order, and the driver writes every line
  itself, in order, so resuming works as on the local engine.
- A killed actor is restarted and its batch run again (Ray Data's default for actor pools:
  `max_restarts=-1`, `max_task_retries=-1`); a batch's rows reach the driver only from the
  attempt that finished, so no line is lost or doubled (tests/test_ray.py kills one).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator

from .lines import JobSettings, Line, answer_lines, failed, job_engine

DEFAULT_BATCH_SIZE = 32  # lines per actor call: enough to fill the engine's batches


def read_text(path: str) -> list[str]:
    """The lines of a local file or of a URI pyarrow opens (what Ray Data reads from)."""
    if "://" not in path:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(path)
    with filesystem.open_input_stream(inner) as f:
        return f.read().decode("utf-8").splitlines()


class LineActor:
    """A Ray Data actor: one loaded model and its engine, answering batches of lines."""

    def __init__(self, ref: str, load: dict, settings: dict, max_batch: int, threads: int | None):
        import torch

        from ..engine import load as load_model

        if threads:
            torch.set_num_threads(threads)
        self.model = load_model(ref, **load)
        self.engine = job_engine(self.model, max_batch)
        self.settings = JobSettings(**settings)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        lines = [
            Line(int(n), json.loads(i), json.loads(b)) for n, i, b in zip(batch["number"], batch["id"], batch["body"])
        ]
        answers = answer_lines(self.model, lines, self.engine, self.settings)
        return {"number": batch["number"], "answer": np.array([json.dumps(a) for a in answers], dtype=object)}


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at `address` (None: RAY_ADDRESS, a cluster started on this machine,
    else a new local one), unless this process already has."""
    import ray

    if ray.is_initialized():
        return
    local = {} if address else {"include_dashboard": False, "num_cpus": num_cpus}
    ray.init(address=address or None, log_to_driver=False, configure_logging=False, **local)


def answer_on_ray(
    ref: str,
    lines: Iterable[Line],
    settings: JobSettings,
    *,
    load: dict | None = None,
    replicas: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_cpus: float = 1,
    num_gpus: float = 0,
    max_batch: int = 16,
    threads: int | None = None,
) -> Iterator[dict]:
    """Every line's output in input order: lines that cannot run at once, the others from the
    actors (call `connect` first)."""
    import ray

    lines = list(lines)
    runnable = [line for line in lines if line.error is None]
    answers: Iterator[dict] = iter(())
    if runnable:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False  # the CLI draws its own bar
        items = [{"number": x.number, "id": json.dumps(x.id), "body": json.dumps(x.body)} for x in runnable]
        dataset = ray.data.from_items(items, override_num_blocks=max(1, math.ceil(len(items) / batch_size)))
        dataset = dataset.map_batches(
            LineActor,
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=replicas),
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            fn_constructor_kwargs={
                "ref": ref,
                "load": load or {},
                "settings": {"defaults": settings.defaults, "preset": settings.preset, "ctx": settings.ctx},
                "max_batch": max_batch,
                "threads": threads,
            },
        )
        answers = ((int(row["number"]), json.loads(row["answer"])) for row in dataset.iter_rows())
    for line in lines:
        if line.error is not None:
            yield failed(line, line.error)
            continue
        number, answer = next(answers)
        if number != line.number:  # preserve_order is what keeps resuming sound: never write out of order
            raise RuntimeError(f"Ray Data returned line {number} where line {line.number} was due")
        yield answer
