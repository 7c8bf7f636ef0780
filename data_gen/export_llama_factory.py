"""``llama-factory``: sharegpt-style ``messages`` + ``images`` and the ``dataset_info.json`` entry.

Images are rendered (prompts burned in). The first user message starts with ``<image>``; the
number of ``<image>`` tokens equals ``len(images)`` (one). Point LLaMA-Factory's
``dataset_dir`` at the output folder and use the dataset names in ``dataset_info.json``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from data_gen.base import IMAGE_TOKEN, JsonSplitWriter, Sample, SampleImage
from data_gen.output import write_json


def dataset_info(prefix: str, files: list[str]) -> dict[str, Any]:
    """The ``dataset_info.json`` entries, one dataset per split file."""
    entry = {
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
        },
    }
    return {
        f"{prefix}_{name.removesuffix('.json')}": {"file_name": name, **entry} for name in files
    }


class LlamaFactoryWriter(JsonSplitWriter):
    name: ClassVar[str] = "llama-factory"

    def record(self, sample: Sample, image: SampleImage) -> dict[str, Any]:
        messages: list[dict[str, str]] = []
        for i, (question, answer) in enumerate(sample.texts):
            content = f"{IMAGE_TOKEN}{question}" if i == 0 else question
            messages.append({"role": "user", "content": content})
            messages.append({"role": "assistant", "content": answer})
        return {"messages": messages, "images": [image.path]}

    def close(self) -> list[str]:
        files = super().close()
        write_json(self.root / "dataset_info.json", dataset_info(self.options.name_prefix, files))
        return [*files, "dataset_info.json"]
