"""ViP-LLaVA training files: entries with ``image``, ``conversations``, ``bboxes`` (or the
documented example's ``bbox``) and ``segmentations``; ``<bboxN>`` becomes a drawn mark.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import overlays as ov
from data_gen.errors import ImportFailed
from data_gen.import_plan import (
    ImageFiles,
    ImportPlan,
    InvalidEntry,
    PlannedConversation,
    PlannedRegion,
    PlannedTurn,
    checked_region,
    flat_rings,
    load_json,
    numbers,
)
from overlays import Prompt, RegionRef

_TOKEN = re.compile(r"<bbox(\d*)>")


def _vip_text(text: str, prompts: Sequence[Prompt], refs: list[RegionRef] | None) -> str:
    """``<bboxN>`` → "within the red rectangle" (what the trainer puts there); spans → refs."""
    out: list[str] = []
    pos = 0
    length = 0
    for match in _TOKEN.finditer(text):
        index = int(match.group(1) or 0)
        if index >= len(prompts):
            raise InvalidEntry(f"{match.group(0)} but the entry has {len(prompts)} box(es)")
        before = text[pos : match.start()]
        out.append(before)
        length += len(before)
        word, _ = ov.SHAPE_WORDS[prompts[index].kind]
        mark = ov.mark_phrase(prompts[index])
        phrase = f"{word} {mark}"
        if length == 0:
            phrase = phrase[:1].upper() + phrase[1:]
        if refs is not None:
            start = length + len(word) + 1
            refs.append(RegionRef(index, start, start + len(mark)))
        out.append(phrase)
        length += len(phrase)
        pos = match.end()
    out.append(text[pos:])
    return "".join(out)


def _vip_segmentation(value: Any, what: str) -> list[tuple[ov.Pt, ...]] | None:
    if value is None or value == []:
        return None
    if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
        value = [value]  # one flat polygon instead of a list of them
    if not isinstance(value, list):
        raise InvalidEntry(f"{what} must be null or a list of flat polygons")
    return flat_rings(value, what)


def plan_vip(plan: ImportPlan, images_dir: Path) -> None:
    """Add a ViP-LLaVA file's entries (regions and conversations) to ``plan``."""
    doc = load_json(plan.file)
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise ImportFailed(f"{plan.file}: a ViP-LLaVA file is a JSON list of entries")
    files = ImageFiles(plan, images_dir)
    for i, entry in enumerate(doc):
        ident = entry.get("id", i) if isinstance(entry, dict) else i
        where = f"entry {i} (id {ident})"
        notes: list[str] = []
        try:
            conversation = _vip_entry(entry, files, images_dir, notes)
        except InvalidEntry as exc:
            plan.invalid.append((where, str(exc)))
            continue
        files.get(images_dir / entry["image"]).conversations.append(conversation)
        plan.notes += [(where, n) for n in notes]


def _vip_entry(
    entry: Any, files: ImageFiles, images_dir: Path, notes: list[str]
) -> PlannedConversation:
    if not isinstance(entry, dict):
        raise InvalidEntry("not a JSON object")
    if not isinstance(entry.get("image"), str):
        raise InvalidEntry("no 'image' path")
    image = files.get(images_dir / entry["image"])
    if "bboxes" in entry and "bbox" in entry:
        raise InvalidEntry("has both 'bbox' and 'bboxes'")
    boxes = entry.get("bboxes", entry.get("bbox")) or []
    if not isinstance(boxes, list):
        raise InvalidEntry("'bboxes' must be a list of [x1, y1, x2, y2]")
    if boxes and isinstance(boxes[0], int | float):
        boxes = [boxes]  # the documented example's single "bbox"
    segmentations = entry.get("segmentations") or [None] * len(boxes)
    if not isinstance(segmentations, list) or len(segmentations) != len(boxes):
        raise InvalidEntry(f"{len(boxes)} boxes but {len(segmentations)} segmentations")
    regions: list[PlannedRegion] = []
    for j, (box, seg) in enumerate(zip(boxes, segmentations, strict=True)):
        values = numbers(box, 4, f"box {j} [x1, y1, x2, y2]")
        rings = _vip_segmentation(seg, f"segmentation {j}")
        regions.append(
            PlannedRegion(checked_region(values, rings, image.size, notes), None, str(j))
        )
    prompts: list[Prompt] = [ov.Rectangle(r.region.box, region=r.region) for r in regions]
    if len(prompts) > 1:
        prompts = ov.assign_distinct_colors(prompts)
    turns = entry.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise InvalidEntry("no 'conversations'")
    if len(turns) % 2:
        raise InvalidEntry("conversations must alternate human/gpt and end with an answer")
    planned: list[PlannedTurn] = []
    for k in range(0, len(turns), 2):
        human, gpt = turns[k], turns[k + 1]
        for turn, role in ((human, "human"), (gpt, "gpt")):
            if not isinstance(turn, dict) or turn.get("from") != role:
                raise InvalidEntry(f"conversation turn {k} must be from {role}")
            if not isinstance(turn.get("value"), str):
                raise InvalidEntry(f"conversation turn {k} has no text 'value'")
        question = human["value"].replace("<image>", "").strip()
        answer = gpt["value"].strip()
        if not question or not answer:
            raise InvalidEntry(f"conversation turn {k}: empty question or answer")
        refs: list[RegionRef] = []
        planned.append(
            PlannedTurn(
                _vip_text(question, prompts, refs), _vip_text(answer, prompts, None), tuple(refs)
            )
        )
    return PlannedConversation(str(entry.get("id", "")), regions, tuple(prompts), planned)
