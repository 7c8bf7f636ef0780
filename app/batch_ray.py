"""`vipstudio ask --batch --ray`: the batch on a Ray cluster, with Ray Data.

Ray Data reads the queries (a JSONL file, split into numbered lines by the local runner's own
bounded reader, or a Parquet file of query columns); a pool of actors (one resident engine each,
:class:`app.batch_ray_worker.AnswerActor`) parses, decodes, renders and generates; the driver
streams the results into shards under ``--out`` (:mod:`app.batch_ray_shards`) and, at the end,
merges them into the SQLite log by request id. Resumable like the local runner: a rerun skips
ids answered in the shards or the log and retries error records. Ray restarts a dead actor and
retries its batch (``max_restarts`` / ``max_task_retries``).
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.batch import Summary
from app.batch_files import BatchFileError
from app.batch_query import read_lines
from app.batch_ray_shards import ShardError, ShardFolder, merge_into_log
from app.batch_ray_worker import ANSWER, ERROR, AnswerActor, EngineFactory
from data_gen.qalog.log import QALog
from vip_model.engine import GenerationSettings

#: How often Ray restarts a dead actor and retries the batch it was answering.
MAX_RESTARTS = 3
#: Query files Ray Data reads by suffix; anything else is read as JSONL.
PARQUET_SUFFIXES = (".parquet", ".pq")


class RayUnavailable(Exception):
    """Ray is not installed, or the cluster cannot be reached."""


class RayRunFailed(Exception):
    """The actors failed past their retries (a model that cannot load, out of memory…); the
    shards written so far are kept."""


@dataclass
class RayOptions:
    """Where and how wide to run: ``address`` None starts (or joins) a local Ray."""

    actors: int = 1
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0
    address: str | None = None
    batch_size: int = 8
    shard_size: int = 1024


@dataclass
class RaySummary(Summary):
    merged: int = 0  # answers newly merged into the log

    def text(self) -> str:
        merged = f"; {self.merged} merged into the log" if self.merged else ""
        return super().text() + merged


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # the [data] part of the extra
    except ImportError:
        raise RayUnavailable(
            "Ray is not installed: pip install 'vip-studio[cluster]' (on the driver and on every "
            "worker)"
        ) from None
    return ray


def run_ray(
    queries: Path,
    out: Path,
    engine_factory: EngineFactory,
    *,
    options: RayOptions,
    log: QALog | None,
    template: str = "llava_v1",
    settings: GenerationSettings | None = None,
    max_pixels: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RaySummary:
    """Answer every query of ``queries`` into shards under ``out`` on Ray; then merge the
    answers into ``log`` (unless None). Raises :class:`RayUnavailable`, :class:`ShardError`."""
    import overlays as ov

    ray = import_ray()
    progress = progress or (lambda n: None)
    started = time.perf_counter()
    summary = RaySummary()
    folder = ShardFolder(out)
    done = folder.prepare()
    logged = log.request_ids() if log is not None else set()
    _connect(ray, options.address)
    source = _read(ray, queries, options.batch_size)
    with warnings.catch_warnings():
        # Bounding the restarts takes **ray_remote_args, deprecated for Ray 2.64 (pinned below).
        warnings.filterwarnings("ignore", message=".*ray_remote_args")
        results = source.map_batches(
            AnswerActor,
            fn_constructor_kwargs={
                "engine_factory": engine_factory,
                "base_dir": str(queries.resolve().parent),
                "template": template,
                "settings": settings or GenerationSettings(),
                "max_pixels": max_pixels or ov.MAX_PIXELS,
                "done": sorted(done),
                "logged": sorted(logged),
                "hash_images": log is not None,
            },
            compute=ray.data.ActorPoolStrategy(size=options.actors),
            batch_size=options.batch_size,
            batch_format="numpy",
            num_cpus=options.cpus_per_actor,
            num_gpus=options.gpus_per_actor,
            max_restarts=MAX_RESTARTS,
            max_task_retries=MAX_RESTARTS,
        )
    try:
        _collect(results, options.shard_size, folder, summary, progress)
    except ray.exceptions.RayError as exc:
        raise RayRunFailed(
            f"the Ray job failed: {_cause(exc)}; the {summary.answered} answers in {out} are kept: "
            "fix this and rerun to finish"
        ) from None
    if log is not None:
        summary.merged = merge_into_log(folder, log)
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _collect(
    results: Any,
    shard_size: int,
    folder: ShardFolder,
    summary: RaySummary,
    progress: Callable[[int], None],
) -> None:
    answered: set[str] = set()
    for batch in results.iter_batches(batch_size=shard_size, batch_format="numpy"):
        answers, errors = [], []
        for kind, text in zip(batch["kind"], batch["record"], strict=True):
            summary.total += 1
            record = json.loads(str(text))
            if kind == ANSWER and record["id"] in answered:
                # Two lines with one id: the actors cannot see each other's, the driver can.
                kind = ERROR
                record = {"id": record["id"], "error": "duplicate id", "error_type": "BadQuery"}
            if kind == ANSWER:
                answered.add(record["id"])
                answers.append(record)
            elif kind == ERROR:
                errors.append(record)
                name = record.get("error_type", "InternalError")
                summary.error_kinds[name] = summary.error_kinds.get(name, 0) + 1
            else:
                summary.skipped += 1
        folder.write(answers, errors)
        summary.answered += len(answers)
        summary.errors += len(errors)
        progress(len(batch["kind"]))


def _cause(exc: BaseException) -> str:
    """The user's error that Ray wrapped: the last line of the remote traceback it quotes
    (``package.module.ModelError: message``), without the package path or Ray's colours."""
    lines = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if line.strip()]
    last = lines[-1].strip() if lines else type(exc).__name__
    name, colon, message = last.partition(": ")
    if colon and " " not in name:
        last = f"{name.rsplit('.', 1)[-1]}: {message}"
    return last[:500]


def _connect(ray: Any, address: str | None) -> None:
    if ray.is_initialized():
        return  # joined already (tests, notebooks): use that cluster
    try:
        if address is None and not os.environ.get("RAY_ADDRESS"):
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local Ray"
        raise RayUnavailable(f"cannot start or reach {where}: {exc}") from None
    # Our progress bar is the one to show; Ray Data's would interleave with it.
    ray.data.DataContext.get_current().enable_progress_bars = False


def _read(ray: Any, queries: Path, batch_size: int) -> Any:
    """The queries as a dataset of rows ``{"number", "line", "problem"}`` (``problem``: why a
    line cannot be read, as the local runner's reader says; ``number`` 0 for Parquet rows).

    The driver reads the file with the local runner's own bounded reader (so line numbers and
    unreadable lines are the same, and the workers need no access to the queries file) and hands
    Ray Data blocks of whole batches: one block feeds one actor task, so many blocks spread the
    work over every actor. (Ray Data's own repartition would need a CPU slot that the actors may
    all hold.)
    """
    rows = (
        _parquet_rows(queries)
        if queries.suffix.lower() in PARQUET_SUFFIXES
        else _jsonl_rows(queries)
    )
    blocks = max(1, min(MAX_BLOCKS, -(-len(rows) // batch_size)))
    return ray.data.from_items(rows, override_num_blocks=blocks)


#: Most blocks the queries are cut into (each one is scheduled on its own).
MAX_BLOCKS = 4096


def _jsonl_rows(queries: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        with queries.open("rb") as fh:
            for number, line in read_lines(fh):
                text, problem = ("", str(line)) if isinstance(line, Exception) else (line, "")
                rows.append({"number": number, "line": text, "problem": problem})
    except OSError as exc:
        raise BatchFileError(f"{queries}: cannot be read ({exc.strerror or exc})") from None
    return rows


def _parquet_rows(queries: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # A row becomes the JSON line the parser takes: missing (null) fields are left out.
    rows = []
    try:
        for batch in pq.ParquetFile(queries).iter_batches():
            for row in batch.to_pylist():
                line = json.dumps({k: v for k, v in row.items() if v is not None}, default=str)
                rows.append({"number": 0, "line": line, "problem": ""})
    except (OSError, pa.ArrowException) as exc:
        raise BatchFileError(f"{queries}: cannot be read as Parquet ({exc})") from None
    return rows


__all__ = [
    "MAX_RESTARTS",
    "RayOptions",
    "RayRunFailed",
    "RaySummary",
    "RayUnavailable",
    "ShardError",
    "import_ray",
    "run_ray",
]
