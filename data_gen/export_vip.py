"""``vip-llava``: ViP-LLaVA's own training format (docs/VIP_FACTS.md §7), on the trainer's id paths.

Raw images, ``bboxes`` (absolute pixels of the upright image, clipped to it), ``segmentations``
(per region a list of flat polygons ``[x0, y0, x1, y1, …]``, or null: the original trainer
iterates over polygons). The trainer draws the prompts itself (random kinds and colours) only
for ids it knows, each with its own text contract (:mod:`data_gen.vip_trainer`); the path is
chosen per record by its region count:

- one region → ``refcocog-gpt4v-…``: the reference is ``<bbox>``, no ``<image>`` in the text
  (the trainer prepends ``<image>\\n``);
- two or more → ``vg_rel-gpt4v-…``: ``<bbox0>``, ``<bbox1>``…, ``<image>\\n`` first;
- none → a plain id: nothing drawn, ``<image>\\n`` then the text as is.

``--id-prefix`` forces one path; records it cannot carry are skipped with a reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from data_gen.base import IMAGE_TOKEN, ExportOptions, JsonSplitWriter, Sample, SampleImage
from data_gen.errors import RecordRefused
from data_gen.records import Conversation
from data_gen.refs import answer_refs, to_bbox_tokens
from data_gen.vip_trainer import REGIONS, TrainerPath, override_path, path_for
from overlays import Region, flat_from_points

VG_REL_NOTE = (
    "region outlines kept in segmentations but not drawn: vg_rel-gpt4v draws each box as a "
    "rectangle or an ellipse"
)


def segmentation(region: Region) -> list[list[float]] | None:
    if not region.polygons:
        return None
    return [flat_from_points(ring) for ring in region.polygons]


class VipLlavaWriter(JsonSplitWriter):
    name: ClassVar[str] = "vip-llava"
    rendered: ClassVar[bool] = False

    def __init__(self, root: Path, options: ExportOptions) -> None:
        super().__init__(root, options)
        self.forced = None if options.id_prefix is None else override_path(options.id_prefix)

    def path(self, regions: int) -> TrainerPath:
        return self.forced or path_for(regions)

    def id_prefix(self, conversation: Conversation) -> str:
        regions = len(conversation.prompts)
        path = self.path(regions)
        if not path.carries(regions):
            raise RecordRefused(path.refusal(regions), conversation.key)
        return path.prefix

    def record(self, sample: Sample, image: SampleImage) -> dict[str, Any]:
        conv = sample.conversation
        prompts = conv.prompts
        path = self.path(len(prompts))
        turns: list[dict[str, str]] = []
        for i, exchange in enumerate(conv.exchanges):
            question, answer = exchange.question, exchange.answer
            if prompts:
                question = to_bbox_tokens(question, exchange.question_refs, prompts, path.token)
                refs = answer_refs(answer, prompts)
                answer = to_bbox_tokens(answer, refs, prompts, path.token)
            if i == 0 and path.image_in_text:
                question = f"{IMAGE_TOKEN}\n{question}"
            turns.append({"from": "human", "value": question})
            turns.append({"from": "gpt", "value": answer})
        if path.prefix == REGIONS:
            outlined = sum(1 for region in conv.regions if region.polygons)
            if outlined:
                self.notes[VG_REL_NOTE] += outlined
        return {
            "id": sample.id,
            "image": image.path,
            "conversations": turns,
            "bboxes": [list(region.box) for region in conv.regions],
            "segmentations": [segmentation(region) for region in conv.regions],
        }
