"""``vip-llava``: ViP-LLaVA's own training format (VIP_FACTS.md §7).

Raw images, ``bboxes`` (absolute pixels of the upright image, clipped to it), ``segmentations``
(per region a list of flat polygons ``[x0, y0, x1, y1, …]``, or null: the original trainer
iterates over polygons), region references as ``<bbox0>``, ``<bbox1>``… (the index of the
region in ``bboxes`` = the prompt's index) and ``<image>\\n`` at the start of the first human
turn. The trainer draws the prompts itself (random kinds and colours), so the marks the person
saw are not in the text: ``<bboxN>`` stands for "within the … rectangle".
"""

from __future__ import annotations

from typing import Any, ClassVar

from data_gen.base import IMAGE_TOKEN, JsonSplitWriter, Sample, SampleImage
from data_gen.refs import answer_refs, to_bbox_tokens
from overlays import Region, flat_from_points


def segmentation(region: Region) -> list[list[float]] | None:
    if not region.polygons:
        return None
    return [flat_from_points(ring) for ring in region.polygons]


class VipLlavaWriter(JsonSplitWriter):
    name: ClassVar[str] = "vip-llava"
    rendered: ClassVar[bool] = False

    def record(self, sample: Sample, image: SampleImage) -> dict[str, Any]:
        conv = sample.conversation
        prompts = conv.prompts
        turns: list[dict[str, str]] = []
        for i, exchange in enumerate(conv.exchanges):
            question = to_bbox_tokens(exchange.question, exchange.question_refs, prompts)
            answer = to_bbox_tokens(exchange.answer, answer_refs(exchange.answer, prompts), prompts)
            if i == 0:
                question = f"{IMAGE_TOKEN}\n{question}"
            turns.append({"from": "human", "value": question})
            turns.append({"from": "gpt", "value": answer})
        return {
            "id": sample.id,
            "image": image.path,
            "conversations": turns,
            "bboxes": [list(region.box) for region in conv.regions],
            "segmentations": [segmentation(region) for region in conv.regions],
        }
