"""`vipstudio eval`'s run: ask every model every query through the batch runner, then score.

Everything lands in the output folder: ``queries.jsonl`` (the items and, with a sweep, their
redrawn variants, as ``ask --batch`` lines), ``answers-<model>.jsonl`` per model (the batch
runner's file: a rerun skips what is answered, so a killed evaluation resumes), and with a
judge ``grades-<model>.jsonl`` (a grade is asked once per answer). The report is computed from
those files each time, so a rerun with another judge or sweep reuses the answers it can.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.batch import BatchRunner, Summary
from data_gen.evaluate import Judge, Report, Scored, queries
from data_gen.evaluate.items import EvalError, EvalItem
from data_gen.evaluate.judge import Grade
from data_gen.evaluate.scoring import METRICS, offline_scores
from data_gen.evaluate.sweep import Query
from data_gen.safe_write import atomic_write
from vip_model.engine import Engine, GenerationSettings


@dataclass
class ModelRun:
    """A model under test: the name the report shows, and how to get its engine."""

    name: str
    engine: Callable[[], Engine]


def slug(name: str) -> str:
    """A file-name-safe, unique short form of a model name or URL."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[-40:]
    return f"{tail}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def write_queries(items: Sequence[EvalItem], axes: Sequence[str], path: Path) -> list[Query]:
    """Write the batch file; return its queries in order."""
    out = []
    with atomic_write(path, "w", suffix=".jsonl") as fh:
        for query, line in queries(items, axes):
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.append(query)
    return out


def _answers(path: Path) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line: the next run rewrites it
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                records[record["id"]] = record
    return records


class _Grades:
    """The judge's grades of one model's answers, kept in a JSONL file as they come."""

    def __init__(self, path: Path, judge: Judge) -> None:
        self.path = path
        self.judge = judge
        self.done: dict[str, Grade] = {}
        for record in _answers(path).values():
            try:
                grade = Grade(
                    float(record["score"]),
                    str(record["raw"]),
                    record["parsed"] is True,
                    int(record["tries"]),
                )
            except (KeyError, TypeError, ValueError):
                continue  # a damaged line: that answer is graded again
            self.done[str(record["id"])] = grade

    def grade(self, question: str, truth: str, answer: str, image: Path) -> Grade:
        key = hashlib.sha256(
            json.dumps([self.judge.model, question, truth, answer]).encode()
        ).hexdigest()[:32]
        if key in self.done:
            return self.done[key]
        grade = self.judge.grade(question, truth, answer, image)
        self.done[key] = grade
        with self.path.open("a", encoding="utf-8") as fh:
            record = {"id": key, "key": key, **grade.__dict__}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return grade


def evaluate(
    source: str,
    items: Sequence[EvalItem],
    models: Sequence[ModelRun],
    out: Path,
    *,
    axes: Sequence[str] = (),
    judge: Judge | None = None,
    batch_size: int = 8,
    template: str = "llava_v1",
    settings: GenerationSettings | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[Report, dict[str, Summary]]:
    """Ask, score and report. ``source`` is "vip-bench" or "export" (which offline metrics).
    Raises :class:`EvalError` for an unusable ``out`` and the batch runner's and the judge's
    errors (BatchFileError, ModelError, JudgeError).
    """
    query_file = out / "queries.jsonl"
    try:
        out.mkdir(parents=True, exist_ok=True)
        asked = write_queries(items, axes, query_file)
    except OSError as exc:
        raise EvalError(
            f"{out}: cannot write the evaluation there ({exc.strerror or exc}): give another --out"
        ) from None
    summaries: dict[str, Summary] = {}
    metric = "judge" if judge is not None else METRICS[source][0]
    report = Report(source, [m.name for m in models], metric)
    for model in models:
        answers_file = out / f"answers-{slug(model.name)}.jsonl"
        engine = model.engine()
        try:
            runner = BatchRunner(
                engine,
                model.name,
                log=None,
                batch_size=batch_size,
                template=template,
                settings=settings,
                progress=progress,
            )
            summaries[model.name] = runner.run(query_file, answers_file)
        finally:
            engine.close()
        grades = None
        if judge is not None:
            grades = _Grades(out / f"grades-{slug(model.name)}.jsonl", judge)
        report.results.extend(_score(source, asked, _answers(answers_file), model.name, grades))
    return report, summaries


def _score(
    source: str,
    asked: Sequence[Query],
    answers: dict[str, dict[str, Any]],
    model: str,
    grades: _Grades | None,
) -> list[Scored]:
    results = []
    for query in asked:
        item = query.item
        record = answers.get(query.id, {"error": "not answered", "error_type": "Missing"})
        answer = record.get("answer")
        question = record.get("question") or item.question
        scores: dict[str, float] = {}
        grade = None
        if isinstance(answer, str):
            scores = offline_scores(source, answer, item.answer)
            if grades is not None:
                image = item.image if query.axis == "" else item.source or item.image
                grade = grades.grade(question, item.answer, answer, image)
                scores["judge"] = grade.score
        results.append(
            Scored(
                query_id=query.id,
                item_id=item.id,
                split=item.split,
                capabilities=item.capabilities,
                question=question,
                reference=item.answer,
                model=model,
                answer=answer if isinstance(answer, str) else None,
                error=None if isinstance(answer, str) else str(record.get("error")),
                scores=scores,
                axis=query.axis,
                value=query.value,
                grade=grade,
            )
        )
    return results
