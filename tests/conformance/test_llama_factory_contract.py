"""`llama-factory` exports as LLaMA-Factory reads them (hiyouga/LLaMA-Factory ff6d4d1, mirrored).

LLaMA-Factory pins ``transformers<=5.8,!=5.6.0`` on main (0.9.5: ``<=5.6``) and cannot share our
environment (transformers 5.23), so its loading rules are written down here from its source:
``data/parser.py`` (``get_dataset_list``, ``DatasetAttr.join``), ``data/loader.py`` (local
files under ``dataset_dir``), ``data/converter.py`` (``SharegptDatasetConverter``,
``_find_medias``: image paths under ``media_dir`` = ``dataset_dir``) and ``data/mm_plugin.py``
(``_validate_messages``: as many ``<image>`` as images). The JSON files are loaded with
`datasets`, as its loader does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dg_fixtures import Sample

from data_gen.base import ExportOptions
from data_gen.export import export

datasets = pytest.importorskip("datasets")

FILEEXT2TYPE = {
    "arrow": "arrow",
    "csv": "csv",
    "json": "json",
    "jsonl": "json",
    "parquet": "parquet",
}


@dataclass
class DatasetAttr:
    """The fields of ``DatasetAttr`` a local sharegpt dataset uses, with its defaults."""

    file_name: str
    formatting: str = "alpaca"
    columns: dict[str, str] = field(default_factory=dict)
    role_tag: str = "from"
    content_tag: str = "value"
    user_tag: str = "human"
    assistant_tag: str = "gpt"
    observation_tag: str = "observation"
    function_tag: str = "function_call"
    system_tag: str = "system"


def get_dataset(dataset_dir: Path, name: str) -> DatasetAttr:
    """``get_dataset_list`` + ``DatasetAttr.join`` for one local dataset."""
    info = json.loads((dataset_dir / "dataset_info.json").read_text())
    entry = info[name]  # "Undefined dataset … in dataset_info.json" otherwise
    assert not {"hf_hub_url", "ms_hub_url", "om_hub_url", "script_url"} & set(entry)
    known = {"file_name", "formatting", "ranking", "split", "columns", "tags", "subset", "folder"}
    assert set(entry) <= known, set(entry) - known
    attr = DatasetAttr(entry["file_name"], entry.get("formatting", "alpaca"))
    attr.columns = dict(entry.get("columns", {}))
    for tag, value in entry.get("tags", {}).items():
        assert hasattr(attr, tag), tag
        setattr(attr, tag, value)
    return attr


def convert_sharegpt(attr: DatasetAttr, example: dict[str, Any], media_dir: Path) -> dict[str, Any]:
    """``SharegptDatasetConverter.__call__`` (no ranking, no kto); raises where it would skip."""
    messages = example[attr.columns.get("messages", "conversations")]
    system = ""
    if messages and messages[0][attr.role_tag] == attr.system_tag:
        system, messages = messages[0][attr.content_tag], messages[1:]
    accept = ((attr.user_tag, attr.observation_tag), (attr.assistant_tag, attr.function_tag))
    aligned = []
    for i, message in enumerate(messages):
        assert message[attr.role_tag] in accept[i % 2], "Invalid role tag"
        aligned.append(message[attr.content_tag])
    assert len(aligned) % 2 == 0, "Invalid message count"
    images = example[attr.columns["images"]] if "images" in attr.columns else None
    if isinstance(images, str):
        images = [images]
    for image in images or []:  # _find_medias: relative to media_dir, else used as given
        assert os.path.isfile(media_dir / image) or os.path.isfile(image), image
    n_tokens = sum(text.count("<image>") for text in aligned)  # mm_plugin._validate_messages
    assert n_tokens == len(images or []), "The number of images does not match <image>"
    return {
        "_prompt": aligned[:-1],
        "_response": aligned[-1:],
        "_system": system,
        "_images": images,
    }


def test_llama_factory_loads_every_dataset_in_dataset_info(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "lf"
    export(
        sample.log,
        ExportOptions(format="llama-factory", out=out, workers=1, val_fraction=0.3, seed=2),
    )
    names = json.loads((out / "dataset_info.json").read_text())
    assert sorted(names) == ["vipstudio_train", "vipstudio_val"]
    total = 0
    for name in names:
        attr = get_dataset(out, name)
        assert attr.formatting == "sharegpt"
        local = out / attr.file_name
        assert local.is_file() and FILEEXT2TYPE[local.suffix[1:]] == "json"
        rows = datasets.load_dataset("json", data_files=str(local), split="train")
        for row in rows:
            converted = convert_sharegpt(attr, row, media_dir=out)
            assert converted["_response"] and converted["_prompt"][0].startswith("<image>")
            total += 1
    assert total == 5
