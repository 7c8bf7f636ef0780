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
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image

import overlays as ov
from app.batch_query import QUERY_KEYS, BadQuery, Query, count_lines, parse_query, read_lines
from app.log import NewTurn, QALog
from app.log_types import file_sha256
from app.safe_write import atomic_write
from vip_model.engine import Answer, Engine, GenerationSettings, Request
from vip_model.errors import InvalidRequest, ModelError


@dataclass
class Ready:
    """A query with its image decoded and its prompts fitted: ready for the engine."""

    query: Query
    request: Request
    refs: list[ov.RegionRef]
    image_size: tuple[int, int]
    request_id: str = ""  # set once the model is known (see :func:`request_id`)
    sha256: str | None = None  # of the image file, hashed on the worker thread when logging


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


#: Seconds one image may take to read and decode before its line becomes an error record.
READ_TIMEOUT_S = 60.0


class ImageTimeout(ov.ImageUnreadable):
    """Reading an image took longer than its timeout (a network drive that stopped answering)."""


class BatchFileError(Exception):
    """The queries or the answers file cannot be read or written; the run stops."""


def read_image(
    path: Path,
    max_pixels: int,
    timeout_s: float = READ_TIMEOUT_S,
    forbidden: frozenset[tuple[int, int]] = frozenset(),
    sha256: bool = False,
) -> tuple[Image.Image, str | None]:
    """:func:`overlays.load_image` (which opens regular files only, never blocking on a FIFO)
    and, with ``sha256``, the file's hash for the log; given up after ``timeout_s``.
    ``forbidden`` holds ``(st_dev, st_ino)`` of files that must not be read as images: the
    queries, the answers and the log.

    The read runs on a daemon thread: a read stuck in the kernel cannot be interrupted, but it
    must hold up neither the batch nor the process's exit.
    """
    result: list[tuple[Image.Image, str | None] | BaseException] = []

    def read() -> None:
        try:
            try:
                st: os.stat_result | None = os.stat(path)
            except (OSError, ValueError):
                st = None  # load_image says what is wrong
            if st is not None and (st.st_dev, st.st_ino) in forbidden:
                raise BadQuery(f"{path}: is the queries, the answers or the log, not an image")
            image = ov.load_image(path, max_pixels=max_pixels)
            result.append((image, file_sha256(path) if sha256 else None))
        except BaseException as exc:  # handed to the waiting thread, raised there
            result.append(exc)

    reader = threading.Thread(target=read, name=f"read {path.name}", daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not result:
        raise ImageTimeout(
            f"{path}: reading the image took over {timeout_s:g} s (a network drive that does not "
            "answer?); the line was skipped, rerun to retry it"
        )
    outcome = result[0]
    if isinstance(outcome, BaseException):
        if isinstance(outcome, OSError):  # the stat, or the file changed between reads
            raise ov.ImageUnreadable(f"{path}: cannot be read ({outcome.strerror})") from None
        if isinstance(outcome, ValueError):  # a path the OS cannot take (cannot pass the parser)
            raise ov.ImageUnreadable(f"{str(path)!a}: not a valid file path") from None
        raise outcome
    return outcome


def prepare(
    query: Query,
    template: str,
    max_pixels: int,
    *,
    read_timeout_s: float = READ_TIMEOUT_S,
    forbidden: frozenset[tuple[int, int]] = frozenset(),
    sha256: bool = False,
) -> Ready:
    """Decode the image (and hash it, for the log), make and fit the prompts, compose the
    question (worker thread)."""
    image, digest = read_image(query.image_path, max_pixels, read_timeout_s, forbidden, sha256)
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
    return Ready(query, request, refs, size, sha256=digest)


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
            except (ValueError, RecursionError):
                dropped += 1
                continue
            if (
                not line.endswith("\n")
                or not isinstance(record, dict)
                or "error" in record
                or not isinstance(record.get("id"), str)
            ):
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
        read_timeout_s: float = READ_TIMEOUT_S,
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
        self.read_timeout_s = read_timeout_s
        self._images: dict[Path, int] = {}

    def run(self, queries: Path, out: Path) -> Summary:
        """Answer every line of ``queries`` into ``out``. Raises :class:`BatchFileError` when
        either file cannot be read or written (a bad line only becomes an error record)."""
        started = time.perf_counter()
        summary = Summary()
        try:
            done = load_previous(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            with (
                queries.open("rb") as lines,
                out.open("a", encoding="utf-8") as sink,
                ThreadPoolExecutor(self.workers) as pool,
            ):
                forbidden = frozenset(
                    (st.st_dev, st.st_ino)
                    for st in (os.fstat(lines.fileno()), os.fstat(sink.fileno()), *self._log_stat())
                )
                self._run(lines, queries.parent, done, summary, sink, pool, forbidden)
        except OSError as exc:
            raise BatchFileError(
                f"{exc.filename or out}: {exc.strerror or exc}; answered lines are kept, "
                "rerun to finish"
            ) from None
        summary.elapsed_s = time.perf_counter() - started
        return summary

    def _log_stat(self) -> list[os.stat_result]:
        if self.log is None:
            return []
        try:
            return [os.stat(self.log.path)]
        except OSError:
            return []

    def _run(
        self,
        lines: BinaryIO,
        base_dir: Path,
        done: set[str],
        summary: Summary,
        sink: Any,
        pool: ThreadPoolExecutor,
        forbidden: frozenset[tuple[int, int]],
    ) -> None:
        logged = self.log.request_ids() if self.log is not None else set()
        pending: deque[tuple[Query, Future[Ready]]] = deque()
        chunk: list[tuple[Query, Ready]] = []
        for query in self._queries(lines, base_dir, done, summary, sink):
            hashed = self.log is not None and query.image_path not in self._images
            future = pool.submit(
                prepare,
                query,
                self.template,
                self.max_pixels,
                read_timeout_s=self.read_timeout_s,
                forbidden=forbidden,
                sha256=hashed,
            )
            pending.append((query, future))
            if len(pending) >= 2 * self.batch_size:
                self._drain(pending, chunk, logged, summary, sink, keep=self.batch_size)
        self._drain(pending, chunk, logged, summary, sink, keep=0)
        if chunk:
            self._answer(chunk, summary, sink)

    def _queries(
        self, lines: BinaryIO, base_dir: Path, done: set[str], summary: Summary, sink: Any
    ) -> Iterator[Query]:
        seen: set[str] = set()
        for number, line in read_lines(lines):
            summary.total += 1
            try:
                if isinstance(line, BadQuery):
                    raise line
                query = parse_query(line, base_dir, self.settings)
            except BadQuery as exc:
                ident = exc.ident or f"line-{number}"
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
                rid = ready.request_id = request_id(query, ready, self.model_name, self.template)
            except (BadQuery, ov.OverlayError, InvalidRequest) as exc:
                self._error(sink, summary, query.id, query.image_path, str(exc), type(exc).__name__)
                continue
            except Exception as exc:  # a bug met by one line must not stop the others
                self._error(
                    sink, summary, query.id, query.image_path, _unexpected(exc), "InternalError"
                )
                continue
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
        except Exception as exc:
            if isinstance(exc, ModelError) and not isinstance(exc, InvalidRequest):
                raise  # the model itself failed (out of memory, server gone): stop the run
            # One request the engine refuses (too long a conversation, say) or trips on must
            # not take its batch down: answer them one at a time to find it.
            answers = [self._answer_one(ready.request) for _, ready in chunk]
        for (query, ready), answer in zip(chunk, answers, strict=True):
            if isinstance(answer, Exception):
                kind = "InvalidRequest" if isinstance(answer, InvalidRequest) else "InternalError"
                message = str(answer) if kind == "InvalidRequest" else _unexpected(answer)
                self._error(sink, summary, query.id, query.image_path, message, kind)
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

    def _answer_one(self, request: Request) -> Answer | Exception:
        try:
            return self.engine.batch([request])[0]
        except ModelError as exc:
            if not isinstance(exc, InvalidRequest):
                raise
            return exc
        except Exception as exc:  # a bug met by this request only: an error record
            return exc

    def _log(self, query: Query, ready: Ready, answer: Answer) -> int | None:
        if self.log is None:
            return None
        path = query.image_path
        if path not in self._images:
            image = self.log.add_image(path, size=ready.image_size, sha256=ready.sha256)
            self._images[path] = image.id
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
        # Text here was checked by the parser, but an exception may quote anything: never let
        # a lone surrogate stop the answers file from being written.
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        record = {"id": ident, "error": message, "error_type": kind}
        if image is not None:
            record["image"] = str(image).encode("utf-8", "backslashreplace").decode("utf-8")
        sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        sink.flush()
        summary.errors += 1
        summary.error_kinds[kind] = summary.error_kinds.get(kind, 0) + 1
        self.progress(1)


def _unexpected(exc: Exception) -> str:
    return f"unexpected {type(exc).__name__}: {exc} (a bug: please report this line)"


__all__ = [
    "QUERY_KEYS",
    "BadQuery",
    "BatchFileError",
    "BatchRunner",
    "ImageTimeout",
    "Query",
    "Summary",
    "count_lines",
    "load_previous",
    "parse_query",
    "prepare",
    "read_image",
]
