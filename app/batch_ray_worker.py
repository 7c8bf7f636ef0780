"""What one Ray actor of ``ask --batch --ray`` does: a resident engine answers batches of lines.

Each line is parsed and prepared exactly as the local runner does (:func:`app.batch_query.
parse_query`, :func:`app.batch.prepare`, :func:`app.batch.request_id`); a bad line becomes an
error record, never a failed task. Records travel back to the driver as JSON text (one column),
so answers and errors share one schema; the driver writes them as shards and merges them into
the log. Nothing here imports Ray: the actor is a plain callable class.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import overlays as ov
from app.batch import answer_each, prepare, request_id
from app.batch_query import BadQuery, Query, parse_query
from vip_model.engine import Answer, Engine, GenerationSettings
from vip_model.errors import InvalidRequest

#: What the driver hands each actor: builds the engine and names its model (called once).
EngineFactory = Callable[[], tuple[Engine, str]]

#: The kinds of output row: an answer, an error record, or a query skipped (done before).
ANSWER, ERROR, SKIPPED = "answer", "error", "skipped"


class AnswerActor:
    """One resident engine; ``__call__`` answers a batch of ``{"number", "line", "problem"}``
    rows and returns ``{"id", "kind", "record"}`` rows (``record``: JSON text)."""

    def __init__(
        self,
        engine_factory: EngineFactory,
        *,
        base_dir: str,
        template: str,
        settings: GenerationSettings,
        max_pixels: int,
        done: Iterable[str] = (),
        logged: Iterable[str] = (),
        hash_images: bool = True,
    ) -> None:
        self.engine, self.model_name = engine_factory()
        self.base_dir = Path(base_dir)
        self.template = template
        self.settings = settings
        self.max_pixels = max_pixels
        self.done = frozenset(done)
        self.logged = frozenset(logged)
        self.hash_images = hash_images

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"id": [], "kind": [], "record": []}

        def emit(ident: str, kind: str, record: dict[str, Any]) -> None:
            out["id"].append(ident)
            out["kind"].append(kind)
            out["record"].append(json.dumps(record, ensure_ascii=False))

        chunk = []
        for number, line, problem in zip(
            batch["number"], batch["line"], batch["problem"], strict=True
        ):
            query = self._parse(int(number), str(line), str(problem or ""), emit)
            if query is None:
                continue
            try:
                ready = prepare(query, self.template, self.max_pixels, sha256=self.hash_images)
                ready.request_id = request_id(query, ready, self.model_name, self.template)
            except (BadQuery, ov.OverlayError, InvalidRequest) as exc:
                emit(query.id, ERROR, _error(query.id, query.image_path, str(exc), exc))
                continue
            except Exception as exc:  # a bug met by one line must not stop the others
                emit(query.id, ERROR, _error(query.id, query.image_path, _unexpected(exc), None))
                continue
            if ready.request_id in self.logged:
                emit(query.id, SKIPPED, {"id": query.id, "request_id": ready.request_id})
                continue
            chunk.append((query, ready))
        answers = self._generate([ready.request for _, ready in chunk])
        for (query, ready), answer in zip(chunk, answers, strict=True):
            if isinstance(answer, Exception):
                kind = "InvalidRequest" if isinstance(answer, InvalidRequest) else "InternalError"
                message = str(answer) if kind == "InvalidRequest" else _unexpected(answer)
                record = _error(query.id, query.image_path, message, None)
                record["error_type"] = kind
                emit(query.id, ERROR, record)
                continue
            emit(query.id, ANSWER, self._record(query, ready, answer))
        return out

    def _parse(
        self, number: int, line: str, problem: str, emit: Callable[[str, str, dict[str, Any]], None]
    ) -> Query | None:
        where = f"line {number}" if number > 0 else "row"
        try:
            if problem:
                raise BadQuery(problem)
            query = parse_query(line, self.base_dir, self.settings)
        except BadQuery as exc:
            # A line without a usable id is known by its number (JSONL, as the local runner
            # does) or by its content (Parquet rows have no stable number): a rerun finds it.
            ident = exc.ident or (
                f"line-{number}"
                if number > 0
                else "row-" + hashlib.sha256(line.encode("utf-8", "replace")).hexdigest()[:16]
            )
            if ident in self.done:
                emit(ident, SKIPPED, {"id": ident})
            else:
                emit(ident, ERROR, _error(ident, None, f"{where}: {exc}", exc))
            return None
        if query.id in self.done:
            emit(query.id, SKIPPED, {"id": query.id})
            return None
        return query

    def _generate(self, requests: list[Any]) -> list[Answer | Exception]:
        # A failure of the model itself is raised: Ray retries the batch on a restarted actor.
        return answer_each(self.engine, requests)

    def _record(self, query: Query, ready: Any, answer: Answer) -> dict[str, Any]:
        request = ready.request
        return {
            "id": query.id,
            "image": str(query.image_path),
            "question": request.question,
            "answer": answer.text,
            "finish_reason": answer.finish_reason,
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "model": self.model_name,
            "prompts": [ov.prompt_to_dict(p) for p in request.prompts],
            "request_id": ready.request_id,
            # What the driver needs to log the turn (NewTurn.from_answer's fields).
            "turn": {
                "template": request.template,
                "settings": request.settings.to_dict(),
                "timings": {**asdict(answer.timings), "cached_tokens": answer.cached_tokens},
                "question_refs": [[r.prompt, r.start, r.end] for r in ready.refs],
                "image_size": list(ready.image_size),
                "image_sha256": ready.sha256,
            },
        }


def _error(ident: str, image: Path | None, message: str, exc: Exception | None) -> dict[str, Any]:
    # An exception may quote anything: never let a lone surrogate stop a shard being written.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    record: dict[str, Any] = {
        "id": ident,
        "error": message,
        "error_type": type(exc).__name__ if exc is not None else "InternalError",
    }
    if image is not None:
        record["image"] = str(image).encode("utf-8", "backslashreplace").decode("utf-8")
    return record


def _unexpected(exc: Exception) -> str:
    return f"unexpected {type(exc).__name__}: {exc} (a bug: please report this line)"


__all__ = ["ANSWER", "ERROR", "SKIPPED", "AnswerActor", "EngineFactory"]
