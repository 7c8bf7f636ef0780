"""The scores of an evaluation: per capability and split, models side by side, the sweep.

Scores are means ×100 (as ViP-Bench reports them). An item counts once in each of its
capabilities, once in its split and once in ``total``; an answer the model could not give (an
error record) scores 0 and is counted under ``errors``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_gen.evaluate.judge import Grade
from data_gen.evaluate.scoring import normalize
from data_gen.safe_write import atomic_write

TOTAL = "total"
#: Rows of the item-by-item differences shown in the text report (the JSON holds them all).
SHOWN_DIFFERENCES = 20


@dataclass
class Scored:
    """One model's answer to one query, scored."""

    query_id: str
    item_id: str
    split: str
    capabilities: tuple[str, ...]
    question: str
    reference: str
    model: str
    answer: str | None  # None: the model gave none (``error`` says why)
    error: str | None
    scores: dict[str, float]
    axis: str = ""
    value: str = ""
    grade: Grade | None = None


@dataclass
class Report:
    source: str  # "vip-bench" or "export"
    models: list[str]
    metric: str  # the headline score: "judge" when a judge graded, else the first offline one
    results: list[Scored] = field(default_factory=list)

    # ------------------------------------------------------------------ aggregates
    def _base(self) -> list[Scored]:
        return [r for r in self.results if not r.axis]

    def groups(self) -> dict[str, dict[str, list[float]]]:
        """``{group: {model: [scores]}}`` for each capability, each split and the total."""
        out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in self._base():
            score = r.scores.get(self.metric, 0.0)
            for group in (*r.capabilities, f"split:{r.split}", TOTAL):
                out[group][r.model].append(score)
        order = sorted(
            (g for g in out if g != TOTAL and not g.startswith("split:")),
            key=lambda g: (-len(next(iter(out[g].values()))), g),
        )
        order += [*sorted(g for g in out if g.startswith("split:")), TOTAL]
        return {g: dict(out[g]) for g in order if g in out}

    def differences(self) -> list[dict[str, Any]]:
        """Items the models answered differently (normalised text), with each one's score."""
        if len(self.models) < 2:
            return []
        by_item: dict[str, dict[str, Scored]] = defaultdict(dict)
        for r in self._base():
            by_item[r.item_id][r.model] = r
        out = []
        for item_id, answers in by_item.items():
            texts = {normalize(a.answer or "") for a in answers.values()}
            if len(texts) < 2 and len(answers) == len(self.models):
                continue
            first = next(iter(answers.values()))
            out.append(
                {
                    "id": item_id,
                    "question": first.question,
                    "reference": first.reference,
                    "answers": {m: a.answer for m, a in answers.items()},
                    "scores": {m: a.scores.get(self.metric, 0.0) for m, a in answers.items()},
                }
            )
        return out

    def sweep(self) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
        """``{model: {axis: {value: {n, score, changed, delta}}}}``: the mean score, the share
        of answers that differ from the base drawing's, and the mean score change."""
        base: dict[tuple[str, str], Scored] = {}
        cells: dict[tuple[str, str, str], list[Scored]] = defaultdict(list)
        for r in self.results:
            if r.axis == "base":
                base[(r.model, r.item_id)] = r
            elif r.axis:
                cells[(r.model, r.axis, r.value)].append(r)
        out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
        for model in dict.fromkeys(m for m, _ in base):  # the base drawing's own row first
            rows = [r for (m, _), r in base.items() if m == model]
            mean = sum(r.scores.get(self.metric, 0.0) for r in rows) / len(rows)
            cell = {"n": len(rows), "score": round(100 * mean, 1), "changed": 0.0, "delta": 0.0}
            out[model] = {"base": {"base": cell}}
        for (model, axis, value), rows in cells.items():
            pairs = [(r, base[(model, r.item_id)]) for r in rows if (model, r.item_id) in base]
            if not pairs:
                continue
            n = len(pairs)
            score = sum(r.scores.get(self.metric, 0.0) for r, _ in pairs) / n
            changed = sum(normalize(r.answer or "") != normalize(b.answer or "") for r, b in pairs)
            delta = sum(
                r.scores.get(self.metric, 0.0) - b.scores.get(self.metric, 0.0) for r, b in pairs
            )
            out[model].setdefault(axis, {})[value] = {
                "n": n,
                "score": round(100 * score, 1),
                "changed": round(100 * changed / n, 1),
                "delta": round(100 * delta / n, 1),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        groups = {
            g: {m: {"score": _pct(v), "n": len(v)} for m, v in per.items()}
            for g, per in self.groups().items()
        }
        errors = {m: sum(1 for r in self.results if r.model == m and r.error) for m in self.models}
        unparsed = {
            m: sum(1 for r in self.results if r.model == m and r.grade and not r.grade.parsed)
            for m in self.models
        }
        return {
            "source": self.source,
            "models": self.models,
            "metric": self.metric,
            "approximate": self.metric == "keyword",
            "scores": groups,
            "errors": errors,
            "unparsed_grades": unparsed if self.metric == "judge" else {},
            "differences": self.differences(),
            "sweep": self.sweep(),
            "items": [_item(r) for r in self.results],
        }

    # ------------------------------------------------------------------ text
    def text(self) -> str:
        title = {"keyword": "keyword rule (approximate)", "judge": "judge", "f1": "token F1"}
        lines = [f"score: {title.get(self.metric, self.metric)}, ×100"]
        rows = [
            [split_label(g), *(_cell(per.get(m)) for m in self.models)]
            for g, per in self.groups().items()
        ]
        lines.append(table(["capability / split", *self.models], rows))
        differences = self.differences()
        if len(self.models) > 1:
            lines.append(f"\n{len(differences)} item(s) answered differently")
            if differences:
                rows = [
                    [
                        d["id"],
                        *(_short(d["answers"].get(m)) for m in self.models),
                        " / ".join(f"{100 * d['scores'].get(m, 0):.0f}" for m in self.models),
                    ]
                    for d in differences[:SHOWN_DIFFERENCES]
                ]
                lines.append(table(["item", *self.models, "scores"], rows))
                if len(differences) > SHOWN_DIFFERENCES:
                    lines.append(f"… {len(differences) - SHOWN_DIFFERENCES} more in the JSON")
        for model, axes in self.sweep().items():
            lines.append(f"\nfragility sweep, {model}: score, answers changed %, score Δ")
            rows = [
                [axis, value, f"{c['score']:.1f}", f"{c['changed']:.0f}", f"{c['delta']:+.1f}"]
                for axis, values in axes.items()
                for value, c in values.items()
            ]
            lines.append(table(["axis", "value", "score", "changed %", "Δ"], rows))
        return "\n".join(lines)

    def write_json(self, path: Path) -> Path:
        with atomic_write(path, "w", suffix=".json") as fh:
            json.dump(self.to_dict(), fh, ensure_ascii=False, indent=1)
        return path


def split_label(group: str) -> str:
    """ "split:bbox" → "bbox (split)"; capabilities and the total as they are."""
    return f"{group.removeprefix('split:')} (split)" if group.startswith("split:") else group


def _pct(values: Sequence[float]) -> float:
    return round(100 * sum(values) / len(values), 1) if values else 0.0


def _cell(values: Sequence[float] | None) -> str:
    return "-" if not values else f"{_pct(values):.1f} (n={len(values)})"


def _short(text: str | None, width: int = 40) -> str:
    if text is None:
        return "(error)"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _item(r: Scored) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.query_id,
        "item": r.item_id,
        "model": r.model,
        "split": r.split,
        "question": r.question,
        "reference": r.reference,
        "answer": r.answer,
        "scores": r.scores,
    }
    if r.axis:
        out["sweep"] = {"axis": r.axis, "value": r.value}
    if r.error:
        out["error"] = r.error
    if r.grade is not None:
        out["judge"] = {"raw": r.grade.raw, "parsed": r.grade.parsed, "tries": r.grade.tries}
    return out


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table, columns padded to their widest cell."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])
