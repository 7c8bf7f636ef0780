"""The output folder of ``ask --batch --ray``: answer shards, error shards, and the log merge.

A shard is written whole or not at all: ``part-<n>.parquet`` first, then ``part-<n>.jsonl``
(written under a temporary name and renamed), so a ``.jsonl`` shard is the commit mark and a
killed driver leaves only whole shards (plus strays that the next run removes). Error records go
to ``errors-<n>.jsonl``; a rerun retries them, so they are cleared when it starts. Only the
driver writes here, and only the driver writes the SQLite log, merging answers in by request id.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

import overlays as ov
from data_gen.qalog.log import NewTurn, QALog
from data_gen.qalog.log_types import file_sha256

#: Columns of a Parquet answer shard; nested values (prompts, the turn's details) are JSON text.
PARQUET_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("image", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("finish_reason", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("model", pa.string()),
        ("request_id", pa.string()),
        ("prompts", pa.string()),
        ("turn", pa.string()),
    ]
)


class ShardError(Exception):
    """The output folder cannot be read or written (or is not one of ours)."""


class ShardFolder:
    """The shards under ``--out``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def prepare(self) -> set[str]:
        """Create the folder, clear strays and old error shards; the ids already answered."""
        try:
            if self.root.exists() and not self.root.is_dir():
                raise ShardError(
                    f"--out {self.root} is a file: with --ray, --out is a folder of shards"
                )
            self.root.mkdir(parents=True, exist_ok=True)
            answered = {p.stem for p in self.root.glob("part-*.jsonl")}
            for path in self.root.iterdir():
                stray = path.name.startswith(".tmp-") or (
                    path.suffix == ".parquet" and path.stem not in answered
                )
                if stray or path.name.startswith("errors-"):
                    path.unlink()
            return {r["id"] for r in self.answers()}
        except OSError as exc:
            raise ShardError(f"{self.root}: cannot be used for shards ({exc})") from None

    def answers(self) -> list[dict[str, Any]]:
        """Every answer record of the committed shards, in shard order."""
        records: list[dict[str, Any]] = []
        for path in sorted(self.root.glob("part-*.jsonl")):
            with path.open(encoding="utf-8") as fh:
                records.extend(json.loads(line) for line in fh if line.strip())
        return records

    def errors(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for path in sorted(self.root.glob("errors-*.jsonl")):
            with path.open(encoding="utf-8") as fh:
                records.extend(json.loads(line) for line in fh if line.strip())
        return records

    def write(self, answers: list[dict[str, Any]], errors: list[dict[str, Any]]) -> None:
        """One shard of answers (Parquet, then JSONL as the commit mark) and one of errors."""
        name = _stamp()
        try:
            if answers:
                table = pa.Table.from_pylist([_flat(r) for r in answers], schema=PARQUET_SCHEMA)
                tmp = self.root / f".tmp-{name}.parquet"
                pq.write_table(table, tmp)
                os.replace(tmp, self.root / f"part-{name}.parquet")
                self._write_jsonl(f"part-{name}.jsonl", answers)
            if errors:
                self._write_jsonl(f"errors-{name}.jsonl", errors)
        except OSError as exc:
            raise ShardError(
                f"{self.root}: cannot write a shard ({exc.strerror or exc}); the shards written "
                "so far are kept: fix this and rerun to finish"
            ) from None

    def _write_jsonl(self, name: str, records: list[dict[str, Any]]) -> None:
        tmp = self.root / f".tmp-{name}"
        with tmp.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / name)


def _stamp() -> str:
    # Sorts by time (shard order = completion order) and never collides between runs.
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    flat = {k: record.get(k) for k in PARQUET_SCHEMA.names}
    flat["prompts"] = json.dumps(record.get("prompts", []), ensure_ascii=False)
    flat["turn"] = json.dumps(record.get("turn", {}), ensure_ascii=False)
    return flat


def merge_into_log(folder: ShardFolder, log: QALog) -> int:
    """Log every answer of the shards not logged yet (by request id); returns how many.

    Idempotent: a merge interrupted or run twice logs each answer once. Each shard is one
    transaction.
    """
    logged = log.request_ids()
    images: dict[str, int] = {}
    added = 0
    for path in sorted(folder.root.glob("part-*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        todo = [r for r in records if r.get("request_id") not in logged]
        if not todo:
            continue
        with log.batch() as batch:
            for r in todo:
                turn = r["turn"]
                image = r["image"]
                if image not in images:
                    digest = turn.get("image_sha256") or file_sha256(Path(image))
                    size = tuple(turn["image_size"])
                    images[image] = batch.add_image(image, size=size, sha256=digest).id
                session = batch.start_session(images[image], source="batch")
                batch.add_turn(
                    NewTurn(
                        session_id=session,
                        prompts=[ov.prompt_from_dict(p) for p in r["prompts"]],
                        question=r["question"],
                        answer=r["answer"],
                        model=r["model"],
                        template=turn["template"],
                        source="batch",
                        question_refs=[ov.RegionRef(*ref) for ref in turn["question_refs"]],
                        settings=turn["settings"],
                        timings=turn["timings"],
                        prompt_tokens=r.get("prompt_tokens") or None,
                        answer_tokens=r.get("completion_tokens") or None,
                        finish_reason=r.get("finish_reason"),
                        request_id=r["request_id"],
                    )
                )
                logged.add(r["request_id"])
                added += 1
    return added


__all__ = ["PARQUET_SCHEMA", "ShardError", "ShardFolder", "merge_into_log"]
