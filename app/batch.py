"""`vipstudio ask --batch`: answer a JSONL file of region questions, resumably.

Each input line is ``{"id", "image", "question", "prompts" | "bboxes" [, "shape", "labels",
"settings"]}``. Each output line is the answer (the `ask --json` object plus the ``id``,
:class:`~vip_model.prepare.AnswerRecord`), or an error record naming what was wrong with that
line; a bad line never stops the run. Output is appended and flushed per batch; a rerun
skips ids already answered (error records are retried) and turns already in the log are
recovered without generating again, so a killed run loses nothing and duplicates nothing.
Images are decoded and rendered on worker threads while the model generates. A line may ask
about a video's frame, or frames over time, instead (``app.batch_video``).
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

import overlays as ov
from app.batch_files import (
    READ_TIMEOUT_S,
    AnswersFile,
    BatchFileError,
    ImageTimeout,
    OutIsAnInput,
    check_files,
    load_previous,
    read_image,
    read_queries,
)
from app.batch_query import QUERY_KEYS, BadQuery, Query, count_lines, parse_query
from app.batch_video import (
    FrameError,
    FrameJob,
    VideoPrepared,
    at_frame,
    log_frame,
    prepare_video,
)
from data_gen.qalog.log import ImageFile, NewTurn, QALog
from vip_model.engine import Answer, Engine, GenerationSettings, Request
from vip_model.errors import InvalidRequest, ModelError
from vip_model.prepare import AnswerRecord, prepare_request, region_prompt


@dataclass
class Ready:
    """A query with its image decoded and its prompts fitted: ready for the engine."""

    query: Query
    request: Request
    refs: list[ov.RegionRef]
    image_size: tuple[int, int]
    request_id: str = ""  # set once the model is known (see :func:`request_id`)
    sha256: str | None = None  # of the image file, hashed on the worker thread when logging
    frame: FrameJob | None = None  # a video line's frame: its record id, index, time

    @property
    def record_id(self) -> str:
        """The id of this answer's record: the line's, or for a frame asked over time
        ``"<id>@<frame>"``."""
        return self.frame.record_id if self.frame is not None else self.query.id


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
    if query.when is not None:  # the local runner sends these to prepare_video
        raise BadQuery("a video line is answered by the local runner only: run without --ray")
    image, digest = read_image(query.image_path, max_pixels, read_timeout_s, forbidden, sha256)
    size = image.size
    prepared = prepare_request(
        image,
        query.question_text,
        query_prompts(query, size),
        settings=query.settings,
        template=template,
    )
    return Ready(query, prepared.request, list(prepared.refs), size, sha256=digest)


def query_prompts(query: Query, size: tuple[int, int]) -> list[ov.Prompt]:
    """The line's prompts on an image (or frame) of ``size``: its own, then one per bbox."""
    prompts = list(query.prompts or [])
    for i, box in enumerate(query.bboxes):
        label = query.labels[i] if i < len(query.labels) else None
        try:
            region = ov.Region(tuple(box))  # type: ignore[arg-type]
            prompts.append(
                region_prompt(query.shape, region, size, seed=query.seed, index=i, label=label)
            )
        except ov.InvalidPrompt as exc:
            raise BadQuery(f"bbox {i}: {exc}") from None
    if len(prompts) > 1 and not query.prompts:
        prompts = ov.assign_distinct_colors(prompts)
    return prompts


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
            # a frame is its own question (an image line's key is as it always was)
            *([ready.frame.plan.index] if ready is not None and ready.frame else []),
        ],
        sort_keys=True,
    )
    return "batch:" + hashlib.sha256(key.encode()).hexdigest()[:32]


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
            lines = queries.open("rb")
            try:
                fh = out.open("ab", buffering=0)
            except OSError:
                lines.close()
                raise
        except OSError as exc:
            raise BatchFileError(
                f"{exc.filename or out}: cannot be read or written ({exc.strerror or exc})"
            ) from None
        with lines, fh, ThreadPoolExecutor(self.workers) as pool:
            inputs = (os.fstat(lines.fileno()), os.fstat(fh.fileno()), *self._log_stat())
            forbidden = frozenset((st.st_dev, st.st_ino) for st in inputs)
            sink = AnswersFile(fh, out)
            self._run(
                read_queries(lines, queries), queries.parent, done, summary, sink, pool, forbidden
            )
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
        lines: Iterator[tuple[int, str | BadQuery]],
        base_dir: Path,
        done: set[str],
        summary: Summary,
        sink: AnswersFile,
        pool: ThreadPoolExecutor,
        forbidden: frozenset[tuple[int, int]],
    ) -> None:
        logged = self.log.request_ids() if self.log is not None else set()
        pending: deque[tuple[Query, Future[Ready | VideoPrepared]]] = deque()
        chunk: list[tuple[Query, Ready]] = []
        for query in self._queries(lines, base_dir, done, summary, sink):
            future: Future[Ready | VideoPrepared]
            if query.when is not None:
                future = pool.submit(
                    prepare_video,
                    query,
                    self.template,
                    self.max_pixels,
                    done=done,
                    log=self.log is not None,
                    forbidden=forbidden,
                )
            else:
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
        self,
        lines: Iterator[tuple[int, str | BadQuery]],
        base_dir: Path,
        done: set[str],
        summary: Summary,
        sink: AnswersFile,
    ) -> Iterator[Query]:
        seen: set[str] = set()
        for number, line in lines:
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
        pending: deque[tuple[Query, Future[Ready | VideoPrepared]]],
        chunk: list[tuple[Query, Ready]],
        logged: set[str],
        summary: Summary,
        sink: AnswersFile,
        keep: int,
    ) -> None:
        while len(pending) > keep:
            query, future = pending.popleft()
            try:
                result = future.result()
                readies = [result] if isinstance(result, Ready) else self._frames(query, result)
                for ready in readies:
                    ready.request_id = request_id(query, ready, self.model_name, self.template)
            except (BadQuery, ov.OverlayError, InvalidRequest) as exc:
                self._error(sink, summary, query.id, query.image_path, str(exc), type(exc).__name__)
                continue
            except Exception as exc:  # a bug met by one line must not stop the others
                self._error(
                    sink, summary, query.id, query.image_path, _unexpected(exc), "InternalError"
                )
                continue
            if isinstance(result, VideoPrepared):
                summary.skipped += result.skipped
                for failed in result.frames:
                    if isinstance(failed, FrameError):
                        self._frame_error(sink, summary, query, failed)
            for ready in readies:
                if self.log is not None and ready.request_id in logged:
                    self._recover(query, ready, summary, sink)
                    continue
                chunk.append((query, ready))
                if len(chunk) >= self.batch_size:
                    self._answer(chunk, summary, sink)
                    chunk.clear()

    @staticmethod
    def _frames(query: Query, prepared: VideoPrepared) -> list[Ready]:
        return [
            Ready(query, f.request, f.refs, f.size, frame=f.job)
            for f in prepared.frames
            if not isinstance(f, FrameError)
        ]

    def _answer(
        self, chunk: list[tuple[Query, Ready]], summary: Summary, sink: AnswersFile
    ) -> None:
        answers = answer_each(self.engine, [ready.request for _, ready in chunk])
        for (query, ready), answer in zip(chunk, answers, strict=True):
            if isinstance(answer, Exception):
                kind = "InvalidRequest" if isinstance(answer, InvalidRequest) else "InternalError"
                message = str(answer) if kind == "InvalidRequest" else _unexpected(answer)
                self._error(sink, summary, query.id, query.image_path, message, kind)
                continue
            turn_id = self._log(query, ready, answer)
            record = AnswerRecord.of(
                str(query.image_path),
                ready.request,
                answer,
                model=self.model_name,
                turn_id=turn_id,
                id=query.id,
            )
            if ready.frame is not None:
                record = at_frame(record, ready.frame, str(query.image_path))
            sink.write(record.to_dict())
            summary.answered += 1
            self.progress(1)
        sink.sync()

    def _log(self, query: Query, ready: Ready, answer: Answer) -> int | None:
        if self.log is None:
            return None
        if ready.frame is not None:
            turn = NewTurn.from_answer(
                0,
                ready.request,
                answer,
                model=self.model_name,
                source="batch",
                question_refs=ready.refs,
                request_id=ready.request_id,
            )
            return log_frame(self.log, turn, ready.frame)
        path = query.image_path
        image_id = self._images.get(path)
        image = None
        if image_id is None:
            image = ImageFile.read(path, size=ready.image_size, sha256=ready.sha256)
        turn = NewTurn.from_answer(
            0,
            ready.request,
            answer,
            model=self.model_name,
            source="batch",
            question_refs=ready.refs,
            request_id=ready.request_id,
        )
        recorded = self.log.record_turn(turn, image_id=image_id, image=image)
        self._images[path] = recorded.image_id
        return recorded.turn_id

    def _recover(self, query: Query, ready: Ready, summary: Summary, sink: AnswersFile) -> None:
        assert self.log is not None
        row = next(iter(self.log.turns(request_id=ready.request_id)), None)
        if row is None:  # pragma: no cover - the id was just listed
            return
        timings = dict(row.timings)
        cached = int(timings.pop("cached_tokens", 0) or 0)
        record = AnswerRecord(
            image=str(query.image_path),
            question=row.question,
            answer=row.answer,
            prompts=tuple(row.prompts),
            model=row.model,
            finish_reason=row.finish_reason,
            turn_id=row.id,
            prompt_tokens=row.prompt_tokens or 0,
            completion_tokens=row.answer_tokens or 0,
            cached_tokens=cached,
            timings=timings,
            id=query.id,
        )
        if ready.frame is not None:
            record = at_frame(record, ready.frame, str(query.image_path))
        sink.write(record.to_dict())
        summary.recovered += 1
        self.progress(1)

    def _frame_error(
        self, sink: AnswersFile, summary: Summary, query: Query, failed: FrameError
    ) -> None:
        plan = failed.job.plan
        where = {"video": str(query.image_path), "frame": plan.index, "t": plan.time}
        self._error(sink, summary, failed.job.record_id, None, failed.message, failed.kind, where)

    def _error(
        self,
        sink: AnswersFile,
        summary: Summary,
        ident: str,
        image: Path | None,
        message: str,
        kind: str,
        where: dict[str, object] | None = None,
    ) -> None:
        # Text here was checked by the parser, but an exception may quote anything: never let
        # a lone surrogate stop the answers file from being written.
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        record: dict[str, object] = {"id": ident, "error": message, "error_type": kind}
        if image is not None:
            record["image"] = str(image).encode("utf-8", "backslashreplace").decode("utf-8")
        record.update(where or {})
        sink.write(record)
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
    "OutIsAnInput",
    "Query",
    "Summary",
    "check_files",
    "count_lines",
    "load_previous",
    "parse_query",
    "prepare",
    "read_image",
]


def answer_each(engine: Engine, requests: list[Request]) -> list[Answer | Exception]:
    """One answer or error per request, as one batch when all goes well.

    A request the engine refuses (too long a conversation, say) or trips on must not take its
    batch down: the batch is then answered one request at a time to find it, and that request
    gets its error. A failure of the model itself (out of memory, server gone) is raised.
    """
    if not requests:
        return []
    try:
        return list(engine.batch(requests))
    except Exception as exc:
        if isinstance(exc, ModelError) and not isinstance(exc, InvalidRequest):
            raise
        return [_answer_one(engine, request) for request in requests]


def _answer_one(engine: Engine, request: Request) -> Answer | Exception:
    try:
        return engine.batch([request])[0]
    except ModelError as exc:
        if not isinstance(exc, InvalidRequest):
            raise
        return exc
    except Exception as exc:  # a bug met by this request only: an error record
        return exc
