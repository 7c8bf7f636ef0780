"""Rendering benchmark: the tiled renderer vs the naive full-frame method of the original code.

For each prompt kind and photo size it renders one prompt (a region of about a quarter of the
image, generated as in training with a fixed seed) both ways, checks the pixels are identical,
and prints the medians and the ratio. Target: ≥ 10× at 4000×3000 for one prompt.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import overlays as ov

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(1024, 768), (1920, 1080), (4000, 3000)]


def timed(fn, repeats: int, setup=None) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        arg = setup() if setup else None
        t0 = time.perf_counter()
        fn(arg) if setup else fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    photo = Image.open(ROOT / "assets/samples/coffee.jpg").convert("RGB")
    print("tiled = overlays.render(..., inplace=True) on a decoded image the caller owns (how the")
    print(
        "engine and the CLI use it); naive = the original full-frame RGBA layer + alpha_composite."
    )
    print(f"{'kind':<10} {'size':>10} {'tiled ms':>9} {'naive ms':>9} {'ratio':>7}  identical")
    failures = 0
    ratios: dict[str, list[float]] = {}
    for w, h in SIZES:
        image = photo.resize((w, h), Image.Resampling.BICUBIC)
        region = ov.Region((0.35 * w, 0.3 * h, 0.62 * w, 0.62 * h))
        repeats = 3 if w * h > 5e6 else 7
        for kind in ov.KINDS:
            prompt = ov.generate(kind, region, (w, h), rng=1)
            fast = timed(lambda im, p=prompt: ov.render(im, [p], inplace=True), repeats, image.copy)
            slow = timed(lambda p=prompt, im=image: ov.render_reference(im, [p]), repeats)
            same = np.array_equal(
                np.asarray(ov.render(image, [prompt])),
                np.asarray(ov.render_reference(image, [prompt])),
            )
            failures += not same
            ratios.setdefault(f"{w}x{h}", []).append(slow / fast)
            row = f"{kind:<10} {w:>5}x{h:<4} {fast * 1e3:9.2f} {slow * 1e3:9.2f}"
            print(f"{row} {slow / fast:6.1f}x  {same}")
    big = photo.resize(SIZES[-1], Image.Resampling.BICUBIC)
    copy_ms = timed(big.copy, 5) * 1e3
    print(
        f"(a copy of the 4000x3000 image, what render(..., inplace=False) adds: {copy_ms:.1f} ms)"
    )
    for size, values in ratios.items():
        print(f"median speed-up at {size}: {statistics.median(values):.1f}x")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
