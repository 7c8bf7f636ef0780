"""The ViP-LLaVA trainer's handling of one record's text, re-implemented from its source.

Mirrors mu-cai/ViP-LLaVA ``llava/train/train.py`` (``LazySupervisedDataset.__getitem__``,
``preprocess_multimodal``) and ``llava/visual_prompt_organizer.py`` (``vip_processor``,
``vip_conv_generator``) as read at commit ab4e364, for what decides the TEXT the model is
trained on and WHICH regions get drawn. Pixels are not drawn here (``overlays`` is tested
against the original drawing code elsewhere). Where the original raises, this raises too: the
trainer catches it, prints "Fail in ViP image processing..." and trains on a random other record.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Any

IMAGE = "<image>"

#: ``visual_prompt_config``: DATASET → (prompt kinds drawn, style).
VISUAL_PROMPT_CONFIG: dict[str, tuple[tuple[str, ...], str]] = {
    "refcocog": (
        ("rectangle", "ellipse", "triangle", "point", "scribble", "mask contour", "mask", "arrow"),
        "",
    ),
    "vcr": (("rectangle", "ellipse", "triangle", "scribble", "mask contour", "mask", "arrow"), ""),
    "vg_rel": (("rectangle", "ellipse"), ""),
    "flickr30k": (("rectangle", "ellipse", "arrow"), ""),
    "v7w": (("rectangle",), "constant"),
    "pointQA_twice": (("rectangle",), "constant"),
}
#: ``visual_prompt_generator.words_shape``.
WORDS_SHAPE: dict[str, tuple[str, str]] = {
    "rectangle": ("within", "rectangle"),
    "ellipse": ("within", "ellipse"),
    "triangle": ("with", "triangle"),
    "point": ("at", "point"),
    "scribble": ("with", "scribble"),
    "mask contour": ("with", "mask contour"),
    "mask": ("with", "mask"),
    "arrow": ("pointed to by", "arrow"),
}
COLOR_NAMES = ("red", "lime", "blue", "yellow", "fuchsia", "aqua", "orange", "purple", "gold")


class NeedsOtherFields(Exception):
    """The DATASET's branch reads fields (``meta_dir``, ``answer``, …) a vip-llava export lacks."""


@dataclass(frozen=True)
class Drawn:
    """One mark the trainer draws: its kind, the box, the polygons it is given (None: none)."""

    kind: str
    box: list[float]
    segmentation: list[list[float]] | None


@dataclass(frozen=True)
class Trained:
    """What the trainer makes of a record: the conversation the model reads, the marks drawn."""

    conversations: list[dict[str, str]]
    drawn: list[Drawn]
    vip: bool  # vip_processor ran (the id's DATASET is one the trainer knows)


def vip_processor(source: dict[str, Any], rng: random.Random) -> Trained:
    """``vip_processor`` for the branches a vip-llava export can reach; raises where it does."""
    parts = source["id"].split("-")
    dataset, sub_type = parts[0], parts[1]  # IndexError on an id without '-'
    kinds, _style = VISUAL_PROMPT_CONFIG[dataset]
    if dataset in {"vg_rel", "v7w", "pointQA_twice"}:
        source["segmentations"] = [None] * len(source["bboxes"])
    if dataset in {"vcr", "flickr30k", "v7w", "pointQA_twice"}:
        raise NeedsOtherFields(f"{dataset} builds its question from its own annotation files")
    shapes = [rng.choice(kinds) for _ in source["bboxes"]]
    prob_random = (0 if shapes[0] == shapes[1] else 0.5) if dataset == "vg_rel" else 0.5
    sampled: list[tuple[str | None, str]] = []
    used: list[Any] = []
    color: Any = None
    for index, _ in enumerate(zip(source["bboxes"], source["segmentations"], strict=False)):
        while color is None or color in used:
            if rng.random() < prob_random:
                name, color = None, (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
            else:
                name = rng.choice(COLOR_NAMES)
                color = name
        if prob_random == 0:
            used.append(color)
        sampled.append((name, shapes[index]))
    conversations = _conv_generator(source, sampled, dataset, sub_type, rng)
    drawn = [
        Drawn(kind, box, seg)
        for (_, kind), box, seg in zip(
            sampled, source["bboxes"], source["segmentations"], strict=False
        )
    ]
    return Trained(conversations, drawn, True)


def _conv_generator(
    source: dict[str, Any],
    sampled: list[tuple[str | None, str]],
    dataset: str,
    sub_type: str,
    rng: random.Random,
) -> list[dict[str, str]]:
    turns: list[dict[str, str]] = source["conversations"]
    if dataset == "refcocog" and sub_type == "gpt4v":
        color, kind = sampled[0]  # IndexError without a region
        word1, word2 = WORDS_SHAPE[kind]
        text = f"{word1} the{f' {color}' if color is not None else ''} {word2}"
        for turn in turns:
            turn["value"] = turn["value"].replace("<bbox>", text)
        turns[0]["value"] = f"{IMAGE}\n" + turns[0]["value"]
        return turns
    if dataset == "vg_rel" and sub_type == "gpt4v":
        for index, (color, kind) in enumerate(sampled):
            word1, word2 = WORDS_SHAPE[kind]
            text = word1 + " " + ("the " if rng.random() < 0.5 else "")
            text += (color + " " if color is not None else "") + word2
            for turn in turns:
                turn["value"] = turn["value"].replace(f"<bbox{index}>", text)
        return turns
    if dataset in {"refcocog", "vg_rel"}:
        return [{"from": "human", "value": "…"}, {"from": "gpt", "value": source["answer"]}]
    return []


def preprocess_multimodal(conversations: list[dict[str, str]]) -> list[dict[str, str]]:
    """Any turn holding ``<image>``: every one removed, one put back in front, then stripped."""
    for turn in conversations:
        if IMAGE in turn["value"]:
            value = turn["value"].replace(IMAGE, "").strip()
            turn["value"] = (f"{IMAGE}\n" + value).strip()
    return conversations


def train_record(record: dict[str, Any], seed: int = 0) -> Trained:
    """``__getitem__`` for one record with an image, minus pixels; raises where the trainer
    would swallow the error and substitute another record."""
    source = copy.deepcopy(record)
    trained = Trained(source["conversations"], [], False)
    if isinstance(source["id"], str) and source["id"].split("-")[0] in VISUAL_PROMPT_CONFIG:
        trained = vip_processor(source, random.Random(seed))
    return Trained(preprocess_multimodal(trained.conversations), trained.drawn, trained.vip)
