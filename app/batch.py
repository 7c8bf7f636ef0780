"""`vipstudio ask --batch`: answer a JSONL file of region questions, resumably.

Each input line is ``{"id", "image", "question", "prompts" | "bboxes" [, "shape", "labels",
"settings"]}``. Each output line is the answer, or an error record naming what was wrong with
that line; a bad line never stops the run. Output is appended and flushed per batch; a rerun
skips ids already answered (error records are retried) and turns already in the log are
recovered without generating again, so a killed run loses nothing and duplicates nothing.
Images are decoded and rendered on worker threads while the model generates.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import overlays as ov
from app.log import NewTurn, QALog
from app.safe_write import atomic_write
from vip_model.engine import Answer, Engine, GenerationSettings, Request
from vip_model.errors import InvalidRequest

QUERY_KEYS = {"id", "image", "question", "prompts", "bboxes", "shape", "labels", "settings", "seed"}


class BadQuery(Exception):
    """A query line that cannot be answered; becomes an error record."""


@dataclass
class Query:
    id: str
    image_path: Path
    question_text: str
    prompts: list[ov.Prompt] | None  # None: made from bboxes once the image size is known
    bboxes: list[list[float]]
    shape: str
    labels: list[str]
    settings: GenerationSettings
    seed: int


@dataclass
class Ready:
    """A query with its image decoded and its prompts fitted: ready for the engine."""

    query: Query
    request: Request
    refs: list[ov.RegionRef]
    image_size: tuple[int, int]
    request_id: str = ""  # set once the model is known (see :func:`request_id`)


@dataclass
class Summary:
    total: int = 0
    answered: int = 0
    errors: int = 0
    skipped: int = 0
    recovered: int = 0
    elapsed_s: float = 0.0
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.answered / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def text(self) -> str:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(self.error_kinds.items()))
        return (
            f"{self.answered} answered, {self.errors} error(s){f' ({kinds})' if kinds else ''}, "
            f"{self.skipped} already done, {self.recovered} recovered from the log; "
            f"{self.elapsed_s:.1f} s, {self.rate:.2f} queries/s"
        )


def parse_query(line: str, base_dir: Path, defaults: GenerationSettings) -> Query:
    """One JSONL line to a :class:`Query`; raises :class:`BadQuery` naming the problem."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadQuery(f"not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise BadQuery("a query must be a JSON object")
    unknown = set(data) - QUERY_KEYS
    if unknown:
        raise BadQuery(f"unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("id", "image", "question"):
        if key not in data:
            raise BadQuery(f"missing field {key!r}")
    if not isinstance(data["question"], str) or not data["question"].strip():
        raise BadQuery("the question is empty")
    if not isinstance(data["image"], str) or not data["image"]:
        raise BadQuery("image must be a file path")
    prompts = None
    if "prompts" in data:
        try:
            prompts = ov.from_document(data["prompts"])
        except ov.InvalidPrompt as exc:
            raise BadQuery(str(exc)) from None
    bboxes = data.get("bboxes") or []
    if not isinstance(bboxes, list) or not all(isinstance(b, list) and len(b) == 4 for b in bboxes):
        raise BadQuery("bboxes must be a list of [x1, y1, x2, y2]")
    shape = data.get("shape", "rectangle")
    if shape not in ov.KINDS:
        raise BadQuery(f"unknown shape {shape!r}: use one of {', '.join(ov.KINDS)}")
    labels = data.get("labels") or []
    try:
        settings = defaults.replace(**(data.get("settings") or {}))
    except (InvalidRequest, TypeError) as exc:
        raise BadQuery(f"settings: {exc}") from None
    image = Path(data["image"])
    return Query(
        id=str(data["id"]),
        image_path=image if image.is_absolute() else base_dir / image,
        question_text=data["question"],
        prompts=prompts,
        bboxes=bboxes,
        shape=shape,
        labels=[str(x) for x in labels],
        settings=settings,
        seed=int(data.get("seed", 0)),
    )


def prepare(query: Query, template: str, max_pixels: int) -> Ready:
    """Decode the image, make and fit the prompts, compose the question (worker thread)."""
    image = ov.load_image(query.image_path, max_pixels=max_pixels)
    size = image.size
    prompts = list(query.prompts or [])
    for i, box in enumerate(query.bboxes):
        try:
            region = ov.fit_region(ov.Region(tuple(box)), size)  # type: ignore[arg-type]
        except ov.InvalidPrompt as exc:
            raise BadQuery(f"bbox {i}: {exc}") from None
        label = query.labels[i] if i < len(query.labels) else None
        prompts.append(ov.generate(query.shape, region, size, rng=query.seed + i, label=label))
    prompts = [ov.fit_to_image(p, size) for p in prompts]
    if len(prompts) > 1 and not query.prompts:
        prompts = ov.assign_distinct_colors(prompts)
    question, refs = ov.compose_question(query.question_text, prompts)
    request = Request(
        image=image,
        question=question,
        prompts=tuple(prompts),
        settings=query.settings,
        template=template,
    )
    return Ready(query, request, refs, size)


def request_id(query: Query, ready: Ready | None, model: str, template: str) -> str:
    """A content key: the same query on the same model resumes instead of repeating."""
    prompts = ov.dumps(ready.request.prompts) if ready else json.dumps(query.bboxes)
    key = json.dumps(
        [
            query.id,
            str(query.image_path.resolve()),
            query.question_text,
            prompts,
            query.settings.to_dict(),
            model,
            template,
        ],
        sort_keys=True,
    )
    return "batch:" + hashlib.sha256(key.encode()).hexdigest()[:32]


def load_previous(out: Path) -> set[str]:
    """Ids already answered in ``out``. Error records and a torn last line are dropped from the
    file (rewritten atomically) so that the rerun retries them without duplicates."""
    if not out.exists():
        return set()
    kept: list[str] = []
    done: set[str] = set()
    dropped = 0
    with out.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                dropped += 1
                continue
            if not line.endswith("\n") or "error" in record or "id" not in record:
                dropped += 1
                continue
            if record["id"] in done:
                dropped += 1
                continue
            done.add(record["id"])
            kept.append(line)
    if dropped:
        with atomic_write(out) as fh:
            fh.writelines(kept)
    return done


class BatchRunner:
    """Runs one batch file through an engine, writing answers and (optionally) the log."""

    def __init__(
        self,
        engine: Engine,
        model_name: str,
        *,
        log: QALog | None,
        batch_size: int = 8,
        template: str = "llava_v1",
        settings: GenerationSettings | None = None,
        max_pixels: int = ov.MAX_PIXELS,
        workers: int = 2,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.model_name = model_name
        self.log = log
        self.batch_size = batch_size
        self.template = template
        self.settings = settings or GenerationSettings()
        self.max_pixels = max_pixels
        self.workers = workers
        self.progress = progress or (lambda n: None)
        self._images: dict[Path, int] = {}

    def run(self, queries: Path, out: Path) -> Summary:
        started = time.perf_counter()
        summary = Summary()
        done = load_previous(out)
        logged = self.log.request_ids() if self.log is not None else set()
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a", encoding="utf-8") as sink, ThreadPoolExecutor(self.workers) as pool:
            pending: deque[tuple[Query, Future[Ready]]] = deque()
            chunk: list[tuple[Query, Ready]] = []
            for item in self._queries(queries, done, summary, sink):
                query = item
                pending.append((query, pool.submit(prepare, query, self.template, self.max_pixels)))
                if len(pending) < 2 * self.batch_size:
                    continue
                self._drain(pending, chunk, logged, summary, sink, keep=self.batch_size)
            self._drain(pending, chunk, logged, summary, sink, keep=0)
            if chunk:
                self._answer(chunk, summary, sink)
        summary.elapsed_s = time.perf_counter() - started
        return summary

    def _queries(self, path: Path, done: set[str], summary: Summary, sink: Any) -> Iterator[Query]:
        seen: set[str] = set()
        with path.open(encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                summary.total += 1
                try:
                    query = parse_query(line, path.parent, self.settings)
                except BadQuery as exc:
                    ident = _id_of(line) or f"line-{number}"
                    if ident in done:
                        summary.skipped += 1
                        self.progress(1)
                        continue
                    self._error(sink, summary, ident, None, f"line {number}: {exc}", "BadQuery")
                    continue
                if query.id in done:
                    summary.skipped += 1
                    self.progress(1)
                    continue
                if query.id in seen:
                    self._error(
                        sink, summary, query.id, None, f"line {number}: duplicate id", "BadQuery"
                    )
                    continue
                seen.add(query.id)
                yield query

    def _drain(
        self,
        pending: deque[tuple[Query, Future[Ready]]],
        chunk: list[tuple[Query, Ready]],
        logged: set[str],
        summary: Summary,
        sink: Any,
        keep: int,
    ) -> None:
        while len(pending) > keep:
            query, future = pending.popleft()
            try:
                ready = future.result()
            except (BadQuery, ov.OverlayError, InvalidRequest) as exc:
                self._error(sink, summary, query.id, query.image_path, str(exc), type(exc).__name__)
                continue
            rid = ready.request_id = request_id(query, ready, self.model_name, self.template)
            if self.log is not None and rid in logged:
                self._recover(query, rid, summary, sink)
                continue
            chunk.append((query, ready))
            if len(chunk) >= self.batch_size:
                self._answer(chunk, summary, sink)
                chunk.clear()

    def _answer(self, chunk: list[tuple[Query, Ready]], summary: Summary, sink: Any) -> None:
        answers: list[Answer | Exception]
        try:
            answers = list(self.engine.batch([ready.request for _, ready in chunk]))
        except InvalidRequest:
            # One request the engine refuses (too long a conversation, say) must not take its
            # batch down: answer them one at a time to find it.
            answers = []
            for _, ready in chunk:
                try:
                    answers.append(self.engine.batch([ready.request])[0])
                except InvalidRequest as exc:
                    answers.append(exc)
        for (query, ready), answer in zip(chunk, answers, strict=True):
            if isinstance(answer, Exception):
                self._error(
                    sink, summary, query.id, query.image_path, str(answer), "InvalidRequest"
                )
                continue
            turn_id = self._log(query, ready, answer)
            record = {
                "id": query.id,
                "image": str(query.image_path),
                "question": ready.request.question,
                "answer": answer.text,
                "finish_reason": answer.finish_reason,
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "model": self.model_name,
                "prompts": [ov.prompt_to_dict(p) for p in ready.request.prompts],
                "turn_id": turn_id,
            }
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            summary.answered += 1
            self.progress(1)
        sink.flush()
        os.fsync(sink.fileno())

    def _log(self, query: Query, ready: Ready, answer: Answer) -> int | None:
        if self.log is None:
            return None
        path = query.image_path
        if path not in self._images:
            self._images[path] = self.log.add_image(path, size=ready.image_size).id
        session = self.log.start_session(self._images[path], source="batch")
        return self.log.add_turn(
            NewTurn.from_answer(
                session,
                ready.request,
                answer,
                model=self.model_name,
                source="batch",
                question_refs=ready.refs,
                request_id=ready.request_id,
            )
        )

    def _recover(self, query: Query, rid: str, summary: Summary, sink: Any) -> None:
        assert self.log is not None
        row = next(iter(self.log.turns(request_id=rid)), None)
        if row is None:  # pragma: no cover - the id was just listed
            return
        record = {
            "id": query.id,
            "image": str(query.image_path),
            "question": row.question,
            "answer": row.answer,
            "finish_reason": row.finish_reason,
            "prompt_tokens": row.prompt_tokens,
            "completion_tokens": row.answer_tokens,
            "model": row.model,
            "prompts": [ov.prompt_to_dict(p) for p in row.prompts],
            "turn_id": row.id,
        }
        sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        sink.flush()
        summary.recovered += 1
        self.progress(1)

    def _error(
        self, sink: Any, summary: Summary, ident: str, image: Path | None, message: str, kind: str
    ) -> None:
        record = {"id": ident, "error": message, "error_type": kind}
        if image is not None:
            record["image"] = str(image)
        sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        sink.flush()
        summary.errors += 1
        summary.error_kinds[kind] = summary.error_kinds.get(kind, 0) + 1
        self.progress(1)


def _id_of(line: str) -> str | None:
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    return str(data["id"]) if isinstance(data, dict) and "id" in data else None


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


__all__ = [
    "BadQuery",
    "BatchRunner",
    "Query",
    "Summary",
    "count_lines",
    "load_previous",
    "parse_query",
]
