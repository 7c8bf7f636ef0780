"""Box → mask benchmark: how good and how fast each method is (issue 13).

1. Quality on generated scenes with a known object mask (IoU of the final mask prompt,
   rasterised, against the truth), at three photo sizes: GrabCut on a crop downscaled to 192,
   384 (the default) or 768 px, and at full resolution; baseline for quality = the box itself
   as the mask; baseline for speed = full-resolution GrabCut. Milliseconds per box = median.
2. The sample photos in assets/samples (no ground truth): a hand-placed box around the main
   object; mask area / box area and ms per box (default GrabCut).
3. SAM and SAM 2 through transformers with TINY RANDOM weights on CPU (no real checkpoint is
   reachable here): their masks are meaningless, and their speed is the cost of our plumbing
   (preprocessing, the upsampled logits, tracing) around a 64-px model, not of a real SAM
   (ViT-B at 1024 px: of the order of a second per image on a CPU).

``--plot PATH`` writes the sample photos with their boxes and masks (to look at).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

import overlays as ov
from overlays.assist import GrabCutOptions, box_to_mask, mask_iou

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"
#: Main object of each sample photo (x1, y1, x2, y2), placed by hand.
SAMPLE_BOXES = {
    "astronaut.jpg": ("helmet", (270, 340, 508, 511)),
    "chelsea.jpg": ("left eye", (130, 80, 215, 165)),
    "coffee.jpg": ("cup", (160, 10, 420, 285)),
    "rocket.jpg": ("rocket", (290, 120, 345, 400)),
}
SIZES = [(640, 480), (1920, 1080), (6000, 4000)]
SIDES = [192, 384, 768, 0]  # 0 = full resolution


def scene(size: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """A textured background with an object of overlapping-but-distinct colours (a blob
    with a stem and a hole-free outline), its true mask, and a box with a 6 % margin."""
    w, h = size
    rng = np.random.default_rng(seed)
    small = (max(8, w // 40), max(8, h // 40))
    background = cv2.resize(
        (rng.random((small[1], small[0], 3)) * 120 + 40).astype(np.uint8), (w, h)
    )
    noise = rng.normal(0, 14, (h, w, 3))
    image = np.clip(background + noise, 0, 255)
    truth = np.zeros((h, w), np.uint8)
    cx, cy, s = w // 2, h // 2, min(w, h)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radii = s * (0.22 + 0.06 * rng.random(angles.size))
    star = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
    cv2.fillPoly(truth, [star.astype(np.int32)], 1)
    cv2.rectangle(truth, (cx - s // 30, cy), (cx + s // 30, cy + int(s * 0.38)), 1, -1)
    colour = np.array([rng.integers(150, 230), rng.integers(40, 120), rng.integers(20, 90)])
    obj = np.clip(colour + rng.normal(0, 22, (h, w, 3)), 0, 255)
    image = np.where(truth[..., None] > 0, obj, image).astype(np.uint8)
    ys, xs = np.nonzero(truth)
    pad = int(0.06 * max(np.ptp(xs), np.ptp(ys)))
    box = (xs.min() - pad, ys.min() - pad, xs.max() + 1 + pad, ys.max() + 1 + pad)
    return image, truth.astype(bool), tuple(int(v) for v in box)


def timed(fn: Callable[[], ov.Mask], runs: int) -> tuple[ov.Mask, float, float]:
    """The result of ``fn`` and the median wall-clock and CPU milliseconds of ``runs`` calls.
    CPU time (this process) stays meaningful when other work shares the machine."""
    walls, cpus = [], []
    result = None
    for _ in range(max(runs, 1)):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    assert result is not None
    return result, 1000 * statistics.median(walls), 1000 * statistics.median(cpus)


def raster(mask: ov.Mask, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(ov.region_mask(mask.marked_region(), size))


def quality_table(seeds: int) -> None:
    print("1. generated scenes with a known object (IoU of the mask prompt vs the truth)")
    print(f"   {seeds} scenes per size; ms per box = median (wall clock, and CPU time of this")
    print("   process); 'vs full' = CPU time of full-resolution GrabCut / this one\n")
    header = f"{'image':>10} | {'method':<22} | {'IoU mean':>8} | {'IoU min':>7} | "
    print(header + f"{'ms/box':>8} | {'CPU ms':>8} | {'vs full':>7} | {'points':>6}")
    print("-" * (len(header) + 41))
    for size in SIZES:
        scenes = [scene(size, seed) for seed in range(seeds)]
        box_ious = []
        for _image, truth, box in scenes:
            as_mask = np.zeros_like(truth)
            as_mask[box[1] : box[3], box[0] : box[2]] = True
            box_ious.append(mask_iou(as_mask, truth))
        label = f"{size[0]}×{size[1]}"
        print(
            f"{label:>10} | {'box as mask (baseline)':<22} | {np.mean(box_ious):8.3f} | "
            f"{min(box_ious):7.3f} | {'—':>8} | {'—':>8} | {'—':>7} | {4:>6}"
        )
        rows = []
        for side in SIDES:
            opts = GrabCutOptions(work_side=side)
            ious, times, cpu_times, points = [], [], [], []
            big = size[0] * size[1] > 4_000_000
            for image, truth, box in scenes[: 1 if big and side == 0 else seeds]:
                mask, ms, cpu = timed(
                    lambda image=image, box=box, opts=opts: box_to_mask(image, box, options=opts),
                    1 if big else 3,
                )
                ious.append(mask_iou(raster(mask, size), truth))
                times.append(ms)
                cpu_times.append(cpu)
                points.append(sum(len(r) for r in mask.polygons))
            ms, cpu = statistics.median(times), statistics.median(cpu_times)
            rows.append((side, ious, ms, cpu, max(points)))
        full_cpu = rows[-1][3]
        for side, ious, ms, cpu, pts in rows:
            name = "GrabCut full resolution" if side == 0 else f"GrabCut crop ≤{side} px"
            if side == GrabCutOptions().work_side:
                name += " *"
            print(
                f"{label:>10} | {name:<22} | {np.mean(ious):8.3f} | {min(ious):7.3f} | "
                f"{ms:8.1f} | {cpu:8.1f} | {full_cpu / cpu:6.1f}× | {pts:>6}"
            )
    print("\n   * the default. Full resolution at 6000×4000: one scene, one run.")


def samples_table(plot: Path | None) -> None:
    print("\n2. sample photos (no ground truth): default GrabCut on a hand-placed box")
    head = f"{'photo':>14} | {'object':<9} | {'box':<18} | {'mask/box':>8} | {'ms/box':>7}"
    print(f"\n{head} | {'CPU ms':>7}")
    print("-" * 78)
    shown = []
    for name, (what, box) in SAMPLE_BOXES.items():
        image = ov.load_image(SAMPLES / name)
        mask, ms, cpu = timed(lambda image=image, box=box: box_to_mask(image, box), 3)
        area = raster(mask, image.size).sum()
        box_area = (box[2] - box[0]) * (box[3] - box[1])
        print(
            f"{name:>14} | {what:<9} | {','.join(map(str, box)):<18} | "
            f"{area / box_area:8.2f} | {ms:7.1f} | {cpu:7.1f}"
        )
        lime = dataclasses.replace(mask, style=mask.style.with_color("lime"))
        shown.append(ov.render(image, [ov.Rectangle(box=box), lime]))
    if plot is not None:
        height = max(s.height for s in shown)
        sheet = Image.new("RGB", (sum(s.width for s in shown), height), "white")
        x = 0
        for s in shown:
            sheet.paste(s, (x, 0))
            x += s.width
        sheet.save(plot)
        print(f"\n   boxes (red) and masks (lime) drawn into {plot}")


def sam_table() -> None:
    print("\n3. SAM / SAM 2 through transformers, TINY RANDOM weights, CPU")
    print("   (masks meaningless; speed = our plumbing around a 64-px model, not a real SAM)\n")
    try:
        import torch

        from vip_model.segment import load_segmenter
        from vip_model.tiny_sam import make_tiny_sam
    except ImportError as exc:
        print(f"   skipped: {exc}")
        return
    torch.set_num_threads(2)
    print(f"{'model':>6} | {'image':>10} | {'load ms':>7} | {'ms/box':>7} | {'CPU ms':>7}")
    print("-" * 52)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sam", "sam2"):
            folder = make_tiny_sam(Path(tmp) / kind, kind)
            started = time.perf_counter()
            segmenter = load_segmenter(folder, device="cpu")
            load_ms = 1000 * (time.perf_counter() - started)
            for size in SIZES[:2]:
                image, _truth, box = scene(size, 0)
                photo = Image.fromarray(image)
                times, cpus = [], []
                for _ in range(4):
                    started, cpu = time.perf_counter(), time.process_time()
                    # Random weights may find nothing: the time still counts.
                    with contextlib.suppress(ov.OverlayError):
                        segmenter.box_to_mask(photo, box)
                    times.append(time.perf_counter() - started)
                    cpus.append(time.process_time() - cpu)
                ms, cpu_ms = 1000 * statistics.median(times[1:]), 1000 * statistics.median(cpus[1:])
                label = f"{size[0]}×{size[1]}"
                print(f"{kind:>6} | {label:>10} | {load_ms:7.0f} | {ms:7.1f} | {cpu_ms:7.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="generated scenes per size")
    parser.add_argument("--plot", type=Path, default=None, help="write the samples sheet here")
    args = parser.parse_args(argv)
    quality_table(args.seeds)
    samples_table(args.plot)
    sam_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
