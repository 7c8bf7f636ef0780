"""What a model is evaluated on: ViP-Bench folders and our own exports, read as :class:`EvalItem`.

ViP-Bench (``mucai/ViP-Bench``; the layout its evaluator ``scripts/eval/vip-bench_evaluator.py``
and the GPT4RoI converter in mu-cai/ViP-LLaVA read)::

    DIR/vip-bench-meta-data.json    {"v1_0": {"image_source": "v1_1.png", "image": "v1_1_0.png",
                                     "question": "... <obj> ...", "answer": "0.75<OR>3/4",
                                     "capability": ["ocr", "math"]}, ...}
    DIR/bbox/questions.jsonl        {"question_id": 0, "image": "v1_1_0.png", "text": "..."}
    DIR/bbox/images/v1_1_0.png      the image with the visual prompt drawn in
    DIR/human/questions.jsonl, DIR/human/images/   the same with human-drawn prompts
    DIR/source_image/v1_1.png (+ v1_1.json)        optional: the plain image and a labelme file
                                                   whose shapes labelled obj, obj1, ... are the
                                                   regions of <obj>, <obj1>, ... (the sweep)

A question's meta-data key is ``v1_{question_id}``. Our exports: the ``val`` split of a
``vip-llava`` export (``val.json``: raw image, ``bboxes``, ``<bbox>`` tokens in the text) or an
``hf`` export (``data/validation-*.parquet``: the image with the prompts drawn in).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import overlays as ov
from data_gen.errors import DataGenError

META = "vip-bench-meta-data.json"
SPLITS: tuple[str, ...] = ("bbox", "human")
_OBJ = re.compile(r"<obj(\d*)>")
_IMAGE_TOKEN = "<image>"


class EvalError(DataGenError):
    """A benchmark or export folder that cannot be evaluated; the message says what to fix."""


@dataclass(frozen=True)
class EvalItem:
    """One question to ask and the reference answer to score against.

    ``image`` either holds the visual prompts already (ViP-Bench, an ``hf`` export: ``question``
    is asked as is) or is ``source`` itself, the plain image, on which ``regions`` are drawn
    before asking (a ``vip-llava`` export). ``sweep_question`` names region N as
    ``<regionN>``, where the mark's words go ("within the red rectangle"); items without
    ``source``/``regions`` are left out of the fragility sweep.
    """

    id: str
    split: str
    image: Path
    question: str
    answer: str
    capabilities: tuple[str, ...] = ()
    source: Path | None = None
    regions: tuple[ov.Region, ...] = ()
    sweep_question: str | None = None

    @property
    def sweepable(self) -> bool:
        return self.source is not None and bool(self.regions) and self.sweep_question is not None

    @property
    def drawn(self) -> bool:
        """The image already shows the prompts (else they are drawn on it before asking)."""
        return self.image != self.source


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalError(f"{path}: not found: {what}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise EvalError(f"{path}: cannot be read as JSON ({exc}): {what}") from None


def _jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EvalError(f"{path}: not found: a ViP-Bench split holds questions.jsonl") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path}: cannot be read ({exc})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise EvalError(f"{path}, line {number}: not valid JSON ({exc})") from None
        if not isinstance(record, dict):
            raise EvalError(f"{path}, line {number}: a question must be a JSON object")
        yield number, record


def load_vip_bench(root: Path, splits: Iterable[str] = SPLITS) -> list[EvalItem]:
    """The questions of ``splits`` of the ViP-Bench folder ``root``; raises :class:`EvalError`."""
    if not root.is_dir():
        raise EvalError(f"{root}: not a folder: give the ViP-Bench folder (holding {META})")
    meta = _read_json(root / META, "the ViP-Bench folder holds the answers in " + META)
    if not isinstance(meta, dict):
        raise EvalError(f"{root / META}: expected an object of questions keyed v1_<id>")
    items: list[EvalItem] = []
    for split in splits:
        path = root / split / "questions.jsonl"
        for number, record in _jsonl(path):
            where = f"{path}, line {number}"
            qid, image, text = record.get("question_id"), record.get("image"), record.get("text")
            if qid is None or not isinstance(image, str) or not isinstance(text, str):
                raise EvalError(f"{where}: needs question_id, image and text")
            entry = meta.get(f"v1_{qid}")
            if not isinstance(entry, dict) or not isinstance(entry.get("answer"), str):
                raise EvalError(f"{where}: no answer for v1_{qid} in {META}")
            caps = entry.get("capability") or []
            if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
                raise EvalError(f"{root / META}: v1_{qid}: capability must be a list of names")
            source, regions, sweep_q = _source(root, entry)
            items.append(
                EvalItem(
                    id=f"{split}/v1_{qid}",
                    split=split,
                    image=root / split / "images" / image,
                    question=text,
                    answer=entry["answer"],
                    capabilities=tuple(caps),
                    source=source,
                    regions=regions,
                    sweep_question=sweep_q,
                )
            )
    if not items:
        raise EvalError(f"{root}: no questions in the splits {', '.join(splits)}")
    return items


def _source(
    root: Path, entry: dict[str, Any]
) -> tuple[Path | None, tuple[ov.Region, ...], str | None]:
    """The plain image, the regions of <obj>, <obj1>... and the question naming them as
    <region0>...; nothing when the source annotation is missing (the sweep skips the item)."""
    name, question = entry.get("image_source"), entry.get("question")
    if not isinstance(name, str) or not isinstance(question, str):
        return None, (), None
    image = root / "source_image" / name
    labelme = image.with_suffix(".json")
    if not image.is_file() or not labelme.is_file():
        return None, (), None
    try:
        doc = json.loads(labelme.read_text(encoding="utf-8"))
        shapes = {s["label"]: s for s in doc["shapes"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None, (), None
    order: list[str] = []
    for match in _OBJ.finditer(question):
        label = f"obj{match.group(1)}"
        if label not in order:
            order.append(label)
    regions = []
    for label in order:
        region = _region(shapes.get(label))
        if region is None:
            return None, (), None
        regions.append(region)

    def placeholder(match: re.Match[str]) -> str:
        return f"<region{order.index(f'obj{match.group(1)}')}>"

    return image, tuple(regions), _OBJ.sub(placeholder, question)


def _region(shape: Any) -> ov.Region | None:
    try:
        points = [(float(x), float(y)) for x, y in shape["points"]]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        box = (min(xs), min(ys), max(xs), max(ys))
        if shape.get("shape_type") == "polygon" and len(points) >= 3:
            return ov.Region(box, (tuple(points),))
        return ov.Region(box)
    except (KeyError, TypeError, ValueError, ov.InvalidPrompt):
        return None
