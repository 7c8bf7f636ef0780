"""Box → mask with SAM or SAM 2, through transformers' own classes, from a local folder.

The folder is one the person downloaded beforehand (e.g. ``facebook/sam-vit-base`` or
``facebook/sam2.1-hiera-tiny``): it is read with ``local_files_only`` and never fetched.

- SAM (``model_type`` ``sam``): ``SamModel`` + ``SamProcessor`` with its PIL image processor
  (``backend="pil"``): resize the longer side to 1024, rescale, normalise (ImageNet mean/std),
  pad to 1024×1024; the box is scaled the same way; ``post_process_masks`` upsamples the
  256×256 logits back to the image. None of it needs torchvision.
- SAM 2 (``sam2``): ``Sam2Model``. Its only image processor (``Sam2ImageProcessor``) is a
  torchvision backend, and torchvision cannot be installed beside our torch
  (docs/VIP_FACTS.md §6). So its inputs are built as that processor documents them, from its
  own ``preprocessor_config.json``: resize to ``size`` (1024×1024: a square, not aspect-preserving),
  bilinear, rescale by ``rescale_factor``, normalise with ``image_mean``/``image_std``; the box is
  scaled per axis to that square; the mask logits are upsampled bilinearly to the image and
  thresholded at 0 (``Sam2Processor.post_process_masks``).

Either way the result is an :class:`overlays.assist.BoxMask` clipped to the box, turned into a
mask prompt by the same code as GrabCut's (:func:`overlays.assist.mask_prompt`).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from overlays.assist import BoxMask, EmptyMask, check_box, image_size_of, mask_prompt
from overlays.prompts import Box, Mask
from overlays.style import Style
from vip_model.errors import CheckpointMismatch, ModelUnavailable

SAM_TYPES = ("sam", "sam2")
#: What Sam2ImageProcessor uses when the checkpoint's config does not say (its class defaults).
SAM2_DEFAULTS: dict[str, Any] = {
    "size": {"height": 1024, "width": 1024},
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "do_rescale": True,
}


@dataclass(frozen=True)
class Sam2Preprocessing:
    """The SAM 2 image preprocessing read from a checkpoint (``preprocessor_config.json``)."""

    height: int = 1024
    width: int = 1024
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    rescale_factor: float = 1 / 255

    @classmethod
    def from_folder(cls, folder: Path) -> Sam2Preprocessing:
        """Read the image processor's settings: ``preprocessor_config.json`` (hub layout) or
        the ``image_processor`` part of ``processor_config.json`` (transformers 5 layout)."""
        config: dict[str, Any] = {}
        flat, nested = folder / "preprocessor_config.json", folder / "processor_config.json"
        try:
            if flat.is_file():
                config = json.loads(flat.read_text(encoding="utf-8"))
            elif nested.is_file():
                config = json.loads(nested.read_text(encoding="utf-8")).get("image_processor", {})
        except (OSError, ValueError, AttributeError) as exc:
            raise ModelUnavailable(
                f"{folder}: cannot read its image processor config: {exc}"
            ) from None
        values = {**SAM2_DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
        size = values["size"]
        try:
            height, width = int(size["height"]), int(size["width"])
            mean = tuple(float(v) for v in values["image_mean"])
            std = tuple(float(v) for v in values["image_std"])
            rescale = float(values["rescale_factor"]) if values["do_rescale"] else 1.0
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelUnavailable(
                f"{folder}: its image processor config is not SAM 2's ({exc!r}): "
                "use the checkpoint's own preprocessor_config.json"
            ) from None
        if len(mean) != 3 or len(std) != 3 or height < 16 or width < 16:
            raise ModelUnavailable(f"{folder}: its image processor config is not SAM 2's")
        if not values["do_normalize"]:
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        return cls(height, width, (mean[0], mean[1], mean[2]), (std[0], std[1], std[2]), rescale)

    def pixel_values(self, image: Image.Image) -> Any:
        """``(1, 3, height, width)`` float32 tensor of ``image`` as Sam2ImageProcessor makes it."""
        import torch

        rgb = image if image.mode == "RGB" else image.convert("RGB")
        resized = rgb.resize((self.width, self.height), Image.Resampling.BILINEAR)
        mean = np.array(self.image_mean, np.float32)
        std = np.array(self.image_std, np.float32)
        array = (np.asarray(resized, np.float32) * np.float32(self.rescale_factor) - mean) / std
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]

    def boxes(self, box: tuple[float, float, float, float], size: tuple[int, int]) -> Any:
        """``(1, 1, 4)`` box in the resized square's coordinates (scaled per axis)."""
        import torch

        w, h = size
        sx, sy = self.width / w, self.height / h
        x1, y1, x2, y2 = box
        return torch.tensor([[[x1 * sx, y1 * sy, x2 * sx, y2 * sy]]], dtype=torch.float32)


@dataclass
class Segmenter:
    """A loaded SAM or SAM 2 checkpoint; :meth:`segment` runs one box (thread-safe)."""

    kind: str
    source: Path
    model: Any
    device: str
    processor: Any = None  # SAM: SamProcessor (PIL backend)
    sam2: Sam2Preprocessing | None = None
    load_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def label(self) -> str:
        return f"{'SAM 2' if self.kind == 'sam2' else 'SAM'} ({self.source.name})"

    def segment(self, image: Image.Image, box: Box) -> BoxMask:
        """The object in ``box`` as a boolean mask over the box; :class:`EmptyMask` if none."""
        size = image_size_of(image)
        x1, y1, x2, y2 = check_box(box, size)
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        with self._lock:
            logits = self.logits(rgb, (float(x1), float(y1), float(x2), float(y2)))
        found = logits[y1:y2, x1:x2] > 0.0
        if not found.any():
            raise EmptyMask(
                f"{self.label} found no object in the box {x1},{y1},{x2},{y2}: draw a box that "
                "fits the object more closely, or use GrabCut"
            )
        return BoxMask(found, x1, y1)

    def logits(self, image: Image.Image, box: tuple[float, float, float, float]) -> Any:
        """Mask logits at the image's full size, as a float numpy array (H, W)."""
        import torch

        with torch.inference_mode():
            if self.kind == "sam":
                inputs = self.processor(
                    images=image, input_boxes=[[list(box)]], return_tensors="pt"
                )
                out = self.model(
                    pixel_values=inputs["pixel_values"].to(self.device),
                    input_boxes=inputs["input_boxes"].to(self.device),
                    multimask_output=False,
                )
                masks = self.processor.image_processor.post_process_masks(
                    out.pred_masks.cpu(),
                    inputs["original_sizes"],
                    inputs["reshaped_input_sizes"],
                    binarize=False,
                )
                return masks[0][0, 0].float().numpy()
            assert self.sam2 is not None
            pixels = self.sam2.pixel_values(image).to(self.device)
            boxes = self.sam2.boxes(box, image.size).to(self.device)
            out = self.model(pixel_values=pixels, input_boxes=boxes, multimask_output=False)
            low = out.pred_masks[:, 0, :1].float().cpu()  # (1, 1, h, w)
            w, h = image.size
            full = torch.nn.functional.interpolate(
                low, (h, w), mode="bilinear", align_corners=False
            )
            return full[0, 0].numpy()

    def box_to_mask(
        self, image: Image.Image, box: Box, *, style: Style | None = None, label: str | None = None
    ) -> Mask:
        """The object inside ``box`` as a mask prompt."""
        return mask_prompt(self.segment(image, box), style=style, label=label)


def checkpoint_kind(folder: Path) -> str:
    """``sam`` or ``sam2`` from the folder's ``config.json``; :class:`ModelUnavailable` if the
    folder is missing or holds something else."""
    if not folder.exists():
        raise ModelUnavailable(
            f"SAM model folder {folder} does not exist: pass the folder of a SAM or SAM 2 "
            "checkpoint downloaded beforehand (e.g. `huggingface-cli download "
            "facebook/sam-vit-base --local-dir sam-vit-base`); the app never downloads it"
        )
    if not folder.is_dir():
        raise ModelUnavailable(f"{folder} is a file: pass the folder holding config.json")
    config_file = folder / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelUnavailable(
            f"{folder} holds no config.json: it is not a SAM or SAM 2 checkpoint folder"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"{config_file} cannot be read as JSON: {exc}") from None
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind not in SAM_TYPES:
        raise ModelUnavailable(
            f"{folder} is a {kind!r} checkpoint, not SAM or SAM 2 (model_type 'sam' or "
            "'sam2'): pass a SAM checkpoint folder, or use GrabCut"
        )
    return str(kind)


def load_segmenter(folder: str | Path, device: str = "cpu") -> Segmenter:
    """Load the SAM or SAM 2 checkpoint in ``folder`` (local files only) onto ``device``."""
    from vip_model.loading import check_loading_report, pick_device
    from vip_model.tiny import quiet_transformers

    started = time.perf_counter()
    path = Path(folder).expanduser()
    kind = checkpoint_kind(path)
    device = pick_device(device)
    from transformers import Sam2Model, SamModel, SamProcessor

    model_class: Any = Sam2Model if kind == "sam2" else SamModel
    processor = None
    sam2 = None
    try:
        if kind == "sam":
            processor = SamProcessor.from_pretrained(path, backend="pil", local_files_only=True)
        else:
            sam2 = Sam2Preprocessing.from_folder(path)
        with quiet_transformers():
            loaded: Any = model_class.from_pretrained(
                path, local_files_only=True, output_loading_info=True
            )
    except OSError as exc:  # weights missing or unreadable
        raise ModelUnavailable(f"{path}: cannot load the {kind} checkpoint: {exc}") from None
    except (RuntimeError, NotImplementedError, ValueError) as exc:  # weights of another shape
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointMismatch(
            f"{path}: its weights do not fit its config.json ({first[:200]}): use the "
            "checkpoint's files as downloaded, unmixed"
        ) from None
    model, report = loaded
    check_loading_report(report, str(path))
    model.to(device).eval()
    return Segmenter(
        kind=kind,
        source=path,
        model=model,
        device=device,
        processor=processor,
        sam2=sam2,
        load_s=time.perf_counter() - started,
    )
