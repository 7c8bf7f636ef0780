"""Region questions for imported regions, as `vipstudio ask --batch` reads them (JSONL).

Each imported region becomes one query ``{"id", "image", "question", "prompts"}``: the region
drawn as a ``shape`` prompt in the constant style (red, width 3, as the CLI draws) carrying the
class name as its label, and the question with ``<region>`` left in place: the batch runner
replaces it by the referring phrase ("Describe the cup within the red rectangle.") and records
where the phrase is. Ids are stable (region id + a hash of question, shape and seed), so a
resumed batch skips what it already answered and a different question gets new ids.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from typing import Any

import overlays as ov
from data_gen.errors import InvalidSelection
from data_gen.qalog.log import QALog
from data_gen.safe_write import atomic_write
from vip_model.prepare import region_prompt

DEFAULT_QUESTION = "Describe <region>."
_PLACEHOLDER = re.compile(r"<(?:region|bbox)0?>")


def region_queries(
    log: QALog,
    *,
    import_id: int | None = None,
    question: str = DEFAULT_QUESTION,
    shape: str = "rectangle",
    seed: int = 0,
) -> Iterator[dict[str, Any]]:
    """One batch query per imported region (of one import, or all), oldest first."""
    check_query_options(question, shape)
    tag = hashlib.sha256(f"{question}\n{shape}\n{seed}".encode()).hexdigest()[:8]
    for row in log.iter_regions(import_id=import_id):
        size = (row.image_width, row.image_height)
        # The seed rule of every door (vip_model.prepare.region_seed): this region drawn with
        # `render --bbox ... --shape SHAPE --seed SEED` looks the same.
        prompt = region_prompt(shape, row.region, size, seed=seed, label=row.label)
        yield {
            "id": f"region-{row.id}-{tag}",
            "image": row.image_path,
            "question": question,
            "prompts": [ov.prompt_to_dict(prompt)],
        }


def check_query_options(question: str, shape: str) -> None:
    """Raise :class:`InvalidSelection` unless the question names the region and the shape exists."""
    if not _PLACEHOLDER.search(question):
        raise InvalidSelection(
            f"the question {question!r} does not name the region: put <region> where the "
            'referring phrase goes, e.g. "Describe <region>."'
        )
    if shape not in ov.KINDS:
        raise InvalidSelection(f"unknown shape {shape!r}: use one of {', '.join(ov.KINDS)}")


def write_jsonl(
    path: str | os.PathLike[str],
    items: Iterable[dict[str, Any]],
    protect: Iterable[str | os.PathLike[str]] = (),
) -> int:
    """Write items one JSON object per line, safely (temp file, fsync, replace); returns count.
    ``protect``: inputs the file must not replace
    (see :func:`~data_gen.safe_write.check_output_file`).
    """
    import json

    count = 0
    with atomic_write(path, protect=protect) as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
            count += 1
    return count
