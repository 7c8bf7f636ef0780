"""Box → mask with SAM / SAM 2 (vip_model.segment), on tiny random checkpoints built offline
and loaded through the same loader as a folder the person points to. Random weights: the
tests check the plumbing (shapes, coordinates, preprocessing, errors), not mask quality."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import overlays as ov
from overlays.assist import BoxMask, BoxOutsideImage
from vip_model.errors import CheckpointMismatch, ModelUnavailable
from vip_model.segment import Sam2Preprocessing, load_segmenter
from vip_model.tiny_sam import TINY_SIDE, make_tiny_sam


@pytest.fixture(scope="module", params=["sam", "sam2"])
def sam_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_sam(tmp_path_factory.mktemp("sam") / request.param, request.param)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray((rng.random((300, 400, 3)) * 255).astype(np.uint8))


def test_tiny_checkpoint_loads_and_segments_inside_the_box(
    sam_dir: Path, photo: Image.Image
) -> None:
    segmenter = load_segmenter(sam_dir)
    assert segmenter.kind == sam_dir.name
    assert segmenter.device == "cpu"
    box = (50.4, 60, 250, 200.6)
    found = segmenter.segment(photo, box)  # random weights, seeded: some pixels are found
    assert isinstance(found, BoxMask)
    assert (found.x0, found.y0) == (50, 60)
    assert found.mask.shape == (141, 200)  # the box in whole pixels: the mask never leaves it
    mask = segmenter.box_to_mask(photo, box, style=ov.Style(color="lime"), label="cat")
    assert mask.style.color == "lime" and mask.label == "cat"
    x1, y1, x2, y2 = mask.marked_region().box
    assert x1 >= 50 and y1 >= 60 and x2 <= 251 and y2 <= 201


def test_segment_is_deterministic_and_thread_safe(sam_dir: Path, photo: Image.Image) -> None:
    from concurrent.futures import ThreadPoolExecutor

    segmenter = load_segmenter(sam_dir)
    box = (10, 10, 390, 290)
    first = segmenter.logits(photo, box)
    assert first.shape == (300, 400)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: segmenter.logits(photo, box), range(2)))
    for r in results:
        assert np.array_equal(r, first)


def test_box_outside_the_image_is_refused(sam_dir: Path, photo: Image.Image) -> None:
    with pytest.raises(BoxOutsideImage, match="outside the 400×300 image"):
        load_segmenter(sam_dir).segment(photo, (500, 10, 600, 100))


def test_sam2_preprocessing_is_the_documented_one(tmp_path: Path) -> None:
    folder = make_tiny_sam(tmp_path / "s2", "sam2")
    prep = Sam2Preprocessing.from_folder(folder)
    assert (prep.height, prep.width) == (TINY_SIDE, TINY_SIDE)
    flat = Image.new("RGB", (200, 100), (255, 128, 0))
    pixels = prep.pixel_values(flat)
    assert tuple(pixels.shape) == (1, 3, TINY_SIDE, TINY_SIDE)
    expected = [(255 / 255 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (0 - 0.406) / 0.225]
    for c in range(3):
        assert torch.allclose(pixels[0, c], torch.full_like(pixels[0, c], expected[c]), atol=1e-5)
    # Resized to a square: the box is scaled per axis (x by 64/200, y by 64/100).
    boxes = prep.boxes((20, 10, 100, 50), (200, 100))
    assert boxes.flatten().tolist() == pytest.approx([6.4, 6.4, 32.0, 32.0])


def test_sam2_config_in_the_transformers5_layout_is_read(tmp_path: Path) -> None:
    folder = make_tiny_sam(tmp_path / "s2", "sam2")
    config = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").unlink()
    config["size"] = {"height": 32, "width": 48}
    (folder / "processor_config.json").write_text(json.dumps({"image_processor": config}))
    prep = Sam2Preprocessing.from_folder(folder)
    assert (prep.height, prep.width) == (32, 48)


def test_missing_folder_is_a_clear_error_and_nothing_is_downloaded(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match=r"does not exist.*never downloads"):
        load_segmenter(tmp_path / "nowhere")
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_segmenter("facebook/sam-vit-base")  # a hub id is not fetched


def test_folder_without_config_is_not_a_sam_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match=r"no config\.json"):
        load_segmenter(tmp_path)
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ModelUnavailable, match="is a file"):
        load_segmenter(tmp_path / "file.bin")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelUnavailable, match="cannot be read as JSON"):
        load_segmenter(tmp_path)


def test_vip_llava_folder_is_not_a_sam_checkpoint(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelUnavailable, match="'vipllava' checkpoint, not SAM"):
        load_segmenter(tiny_model_dir)


def test_config_without_weights_is_a_clear_error(tmp_path: Path) -> None:
    folder = make_tiny_sam(tmp_path / "s", "sam")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelUnavailable, match="cannot load the sam checkpoint"):
        load_segmenter(folder)


def test_weights_of_another_model_are_a_checkpoint_mismatch(tmp_path: Path) -> None:
    sam = make_tiny_sam(tmp_path / "sam", "sam")
    sam2 = make_tiny_sam(tmp_path / "sam2", "sam2")
    shutil.copy(sam2 / "model.safetensors", sam / "model.safetensors")
    with pytest.raises(CheckpointMismatch):
        load_segmenter(sam)


def test_sam_hub_layout_uses_the_pil_image_processor(tmp_path: Path, photo: Image.Image) -> None:
    """A folder as the hub holds it (a flat preprocessor_config.json naming the torchvision
    ``SamImageProcessor``) loads with the PIL processor and gives the same mask."""
    folder = make_tiny_sam(tmp_path / "s", "sam")
    saved = json.loads((folder / "processor_config.json").read_text())["image_processor"]
    expected = load_segmenter(folder).logits(photo, (50, 60, 250, 200))
    (folder / "processor_config.json").unlink()
    hub = {**saved, "image_processor_type": "SamImageProcessor", "processor_class": "SamProcessor"}
    (folder / "preprocessor_config.json").write_text(json.dumps(hub))
    segmenter = load_segmenter(folder)
    assert type(segmenter.processor.image_processor).__name__ == "SamImageProcessorPil"
    assert np.allclose(segmenter.logits(photo, (50, 60, 250, 200)), expected, atol=1e-5)
