"""The validation split of our own exports (``vipstudio export``) as :class:`EvalItem`.

``vip-llava``: ``val.json`` records hold the raw image, ``bboxes`` (and ``segmentations``) and
the first exchange's question with ``<bbox>``/``<bboxN>`` where the trainer writes "within the
… rectangle"; the regions are drawn before asking, so the item can be swept. ``hf``:
``data/validation-*.parquet`` rows hold the image with the prompts drawn in; it is written to
``cache`` once. Only the first exchange of each record is asked (later turns need the
conversation so far); its answer is the reviewed one the export holds.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import overlays as ov
from data_gen.evaluate.items import EvalError, EvalItem

_BBOX = re.compile(r"<bbox(\d*)>")
_IMAGE_TOKEN = "<image>"


def load_export(root: Path, cache: Path) -> list[EvalItem]:
    """The validation records of the export folder ``root`` (format found from its files)."""
    if not root.is_dir():
        raise EvalError(f"{root}: not a folder: give a folder written by `vipstudio export`")
    if (root / "val.json").is_file():
        items = _vip_llava(root)
    elif sorted((root / "data").glob("validation-*.parquet")):
        items = _hf(root, cache)
    elif (root / "train.json").is_file() or sorted((root / "data").glob("train-*.parquet")):
        raise EvalError(
            f"{root}: the export has no validation split: export again with --val-fraction > 0"
        )
    else:
        raise EvalError(
            f"{root}: not a vip-llava or hf export (no val.json, no data/validation-*.parquet)"
        )
    if not items:
        raise EvalError(f"{root}: the validation split holds no question with an answer")
    return items


def _first_exchange(turns: Any) -> tuple[str, str] | None:
    if not isinstance(turns, list) or len(turns) < 2:
        return None
    question, answer = turns[0], turns[1]
    if not isinstance(question, dict) or not isinstance(answer, dict):
        return None
    q, a = question.get("value"), answer.get("value")
    if not isinstance(q, str) or not isinstance(a, str):
        return None
    return q.replace(_IMAGE_TOKEN, "").strip(), a


def _vip_llava(root: Path) -> list[EvalItem]:
    path = root / "val.json"
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise EvalError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(records, list):
        raise EvalError(f"{path}: expected a JSON list of records")
    items = []
    for number, record in enumerate(records):
        if not isinstance(record, dict):
            raise EvalError(f"{path}: record {number} is not an object")
        exchange = _first_exchange(record.get("conversations"))
        image = record.get("image")
        if exchange is None or not isinstance(image, str):
            raise EvalError(f"{path}: record {number} has no image or no question and answer")
        question, answer = exchange
        regions = _regions(record, path, number)
        source = root / image
        items.append(
            EvalItem(
                id=f"val/{record.get('id', number)}",
                split="validation",
                image=source,
                question=question,
                answer=answer,
                source=source if regions else None,
                regions=regions,
                sweep_question=_BBOX.sub(_placeholder, question) if regions else None,
            )
        )
    return items


def _placeholder(match: re.Match[str]) -> str:
    return f"<region{match.group(1) or 0}>"


def _regions(record: dict[str, Any], path: Path, number: int) -> tuple[ov.Region, ...]:
    boxes = record.get("bboxes") or []
    segmentations = record.get("segmentations") or [None] * len(boxes)
    try:
        regions = []
        for box, seg in zip(boxes, segmentations, strict=False):
            rings = None
            if seg:
                rings = tuple(ov.points_from_flat(flat) for flat in seg)
            regions.append(ov.Region(tuple(box), rings))
        return tuple(regions)
    except (TypeError, ValueError, ov.InvalidPrompt) as exc:
        raise EvalError(f"{path}: record {number}: bad bboxes/segmentations ({exc})") from None


def _hf(root: Path, cache: Path) -> list[EvalItem]:
    import pyarrow.parquet as pq

    items = []
    cache.mkdir(parents=True, exist_ok=True)
    for shard in sorted((root / "data").glob("validation-*.parquet")):
        try:
            rows = pq.read_table(shard).to_pylist()
        except Exception as exc:  # pyarrow raises many kinds for a damaged file
            raise EvalError(f"{shard}: cannot be read as Parquet ({exc})") from None
        for row in rows:
            texts = [
                part.get("text")
                for message in row.get("messages") or []
                for part in message.get("content") or []
                if part.get("type") == "text"
            ]
            images = row.get("images") or []
            if len(texts) < 2 or not images or not images[0].get("bytes"):
                raise EvalError(f"{shard}: row {row.get('id')!r} has no image or no exchange")
            data: bytes = images[0]["bytes"]
            name = hashlib.sha256(data).hexdigest()[:24] + Path(images[0].get("path") or "").suffix
            image = cache / name
            if not image.exists():
                image.write_bytes(data)
            items.append(
                EvalItem(
                    id=f"val/{row.get('id')}",
                    split="validation",
                    image=image,
                    question=texts[0].strip(),
                    answer=texts[1],
                )
            )
    return items
