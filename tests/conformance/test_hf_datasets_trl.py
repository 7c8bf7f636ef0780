"""The `hf` export loaded by `datasets` and batched by TRL's vision collator with the tiny
model's processor, the way `SFTTrainer` feeds a VLM.

The tiny checkpoint ships no chat template (the hub checkpoint's is the model card's
``###Human`` form), so the collator is given LLaVA v1's, written below in Jinja; the test checks
it renders exactly what our own template (:mod:`vip_model.templates`) gives the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dg_fixtures import Sample
from PIL import Image

from data_gen.base import ExportOptions
from data_gen.export import export
from vip_model.templates import SYSTEM_TEXT, Turn, get_template

datasets = pytest.importorskip("datasets")
transformers = pytest.importorskip("transformers")

#: LLaVA v1 (what ViP-LLaVA was fine-tuned with) for typed-content messages.
LLAVA_V1_JINJA = (
    "{{ '" + SYSTEM_TEXT.replace("'", "\\'") + " ' }}"
    "{% for m in messages %}"
    "{% if m.role == 'user' %}USER: "
    "{% for c in m.content %}{% if c.type == 'image' %}<image>\n{% endif %}{% endfor %}"
    "{% for c in m.content %}{% if c.type == 'text' %}{{ c.text }}{% endif %}{% endfor %} "
    "{% else %}ASSISTANT: "
    "{% for c in m.content %}{% if c.type == 'text' %}{{ c.text }}{% endif %}{% endfor %}</s>"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def texts(messages: list[dict[str, Any]], role: str) -> list[str]:
    return [
        "".join(c["text"] for c in m["content"] if c["type"] == "text")
        for m in messages
        if m["role"] == role
    ]


@pytest.fixture
def hf_dataset(sample: Sample, tmp_path: Path) -> Any:
    export(sample.log, ExportOptions(format="hf", out=tmp_path / "hf", workers=1))
    return datasets.load_dataset(str(tmp_path / "hf"))


@pytest.fixture(scope="module")
def processor(tiny_model_dir: Path) -> Any:
    return transformers.AutoProcessor.from_pretrained(tiny_model_dir)


def test_datasets_loads_the_hf_export_with_decoded_images(hf_dataset: Any) -> None:
    assert set(hf_dataset) == {"train"} and hf_dataset["train"].num_rows == 5
    for row in hf_dataset["train"]:
        assert isinstance(row["images"][0], Image.Image) and len(row["images"]) == 1
        slots = [c for m in row["messages"] for c in m["content"] if c["type"] == "image"]
        assert len(slots) == 1 and row["messages"][0]["content"][0]["type"] == "image"


def test_the_chat_template_renders_our_training_prompt(hf_dataset: Any, processor: Any) -> None:
    for row in hf_dataset["train"]:
        questions, answers = texts(row["messages"], "user"), texts(row["messages"], "assistant")
        history = [Turn(q, a) for q, a in zip(questions[:-1], answers[:-1], strict=True)]
        ours = get_template("llava_v1").prompt(history, questions[-1]) + " " + answers[-1] + "</s>"
        theirs = processor.apply_chat_template(
            row["messages"], chat_template=LLAVA_V1_JINJA, tokenize=False
        )
        assert theirs == ours


def test_trl_vision_collator_batches_the_export(hf_dataset: Any, processor: Any) -> None:
    trl = pytest.importorskip("trl")
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    collator = DataCollatorForVisionLanguageModeling(processor, chat_template=LLAVA_V1_JINJA)
    rows = list(hf_dataset["train"])
    batch = collator(rows)
    n = len(rows)
    side = processor.image_processor.crop_size["height"]
    assert tuple(batch["pixel_values"].shape) == (n, 3, side, side)
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    # LlavaProcessor's count: patches + additional tokens, CLS dropped by the "default" strategy
    per_image = (side // processor.patch_size) ** 2 + processor.num_additional_image_tokens
    per_image -= processor.vision_feature_select_strategy == "default"
    assert (batch["input_ids"] == image_id).sum(dim=1).tolist() == [per_image] * n
    assert batch["labels"].shape == batch["input_ids"].shape
    assert trl.__version__
