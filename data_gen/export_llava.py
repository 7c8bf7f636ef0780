"""``llava-rendered``: LLaVA conversation JSON on images with the prompts burned in.

Each image is the original with its prompts drawn exactly as the person saw them
(:func:`overlays.render`), so any LLaVA-style trainer can use it without drawing anything; the
questions keep their referring phrases ("the cup within the red rectangle").
"""

from __future__ import annotations

from typing import Any, ClassVar

from data_gen.base import IMAGE_TOKEN, JsonSplitWriter, Sample, SampleImage


def llava_turns(sample: Sample) -> list[dict[str, str]]:
    turns: list[dict[str, str]] = []
    for i, (question, answer) in enumerate(sample.texts):
        value = f"{IMAGE_TOKEN}\n{question}" if i == 0 else question
        turns.append({"from": "human", "value": value})
        turns.append({"from": "gpt", "value": answer})
    return turns


class LlavaRenderedWriter(JsonSplitWriter):
    name: ClassVar[str] = "llava-rendered"

    def record(self, sample: Sample, image: SampleImage) -> dict[str, Any]:
        return {"id": sample.id, "image": image.path, "conversations": llava_turns(sample)}
