"""``swift``: ms-swift's JSON Lines (``messages`` + ``images``, ``objects`` for grounding).

Images are rendered (prompts burned in, as the person saw them). The first user message starts
with ``<image>``; ``len(images)`` is 1. Where a question names a region, the phrase becomes
ms-swift's grounding tags ``<ref-object><bbox>`` and ``objects`` holds, per tag pair in text
order, the phrase (``ref``) and the region's box (``bbox``, absolute pixels: ``bbox_type``
"real", ``image_id`` 0). ms-swift's template puts them back as the phrase followed by the box in
its model's own notation (e.g. Qwen's ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>``), so the
model reads both the mark and its coordinates. Answers are kept as text.
"""

from __future__ import annotations

from typing import Any, ClassVar

from data_gen.base import IMAGE_TOKEN, JsonSplitWriter, Sample, SampleImage
from data_gen.refs import usable_refs

REF_TAG = "<ref-object>"
BBOX_TAG = "<bbox>"


class SwiftWriter(JsonSplitWriter):
    name: ClassVar[str] = "swift"
    json_lines: ClassVar[bool] = True

    def record(self, sample: Sample, image: SampleImage) -> dict[str, Any]:
        conv = sample.conversation
        refs: list[str] = []
        boxes: list[list[float]] = []
        messages: list[dict[str, str]] = []
        for i, ((question, answer), exchange) in enumerate(
            zip(sample.texts, conv.exchanges, strict=True)
        ):
            stored = exchange.question_refs if sample.variant == 0 else ()
            parts: list[str] = []
            pos = 0
            for ref in usable_refs(question, stored, sample.prompts):
                parts.append(question[pos : ref.start] + REF_TAG + BBOX_TAG)
                refs.append(question[ref.start : ref.end])
                boxes.append(list(conv.regions[ref.prompt].box))
                pos = ref.end
            content = "".join(parts) + question[pos:]
            messages.append(
                {"role": "user", "content": IMAGE_TOKEN + content if i == 0 else content}
            )
            messages.append({"role": "assistant", "content": answer})
        record: dict[str, Any] = {"messages": messages, "images": [image.path]}
        if refs:
            record["objects"] = {
                "ref": refs,
                "bbox": boxes,
                "bbox_type": "real",
                "image_id": [0] * len(refs),
            }
        return record
