"""What checking every original in full costs a raw export (issue 9 §5).

`export --format vip-llava` now reads each original, checks its sha256 against the log and
decodes it in full (a truncated file or a decompression bomb is left out instead of copied),
in the worker pool. Baseline, measured in the same run on the same files: what the export did
before, a header read (`overlays.image_size`) and a file copy per image, in one process.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageFilter

import overlays as ov
from data_gen.base import ExportOptions
from data_gen.export import export
from data_gen.parallel import default_workers
from data_gen.qalog.log import NewTurn, QALog

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 48
SIZE = (3000, 2000)  # 6 MP photos


def build(folder: Path) -> tuple[Path, list[Path]]:
    source = Image.open(sorted((ROOT / "assets/samples").glob("*.jpg"))[0]).convert("RGB")
    base = source.resize(SIZE).filter(ImageFilter.DETAIL)
    paths = []
    for i in range(IMAGES):
        path = folder / f"photo{i:03d}.jpg"
        base.rotate(i * 7, fillcolor=(i, 2 * i, 3 * i)).save(path, quality=92)
        paths.append(path)
    db = folder / "log.sqlite"
    with QALog.open(db) as log:
        for path in paths:
            image = log.add_image(path)
            session = log.start_session(image.id)
            prompts = [ov.Rectangle((100, 100, 900, 700))]
            question, refs = ov.compose_question("What is <region>?", prompts)
            turn = NewTurn(
                session, prompts, question, "A thing.", "m", "llava_v1", question_refs=refs
            )
            log.add_turn(turn)
    return db, paths


def header_and_copy(paths: list[Path], out: Path) -> float:
    out.mkdir()
    started = time.perf_counter()
    for path in paths:
        ov.image_size(path)
        shutil.copyfile(path, out / path.name)
    return time.perf_counter() - started


def per_image(paths: list[Path], check: object) -> float:
    started = time.perf_counter()
    for path in paths:
        check(path.read_bytes())  # type: ignore[operator]
    return (time.perf_counter() - started) / len(paths)


def checked_export(db: Path, out: Path, workers: int) -> float:
    with QALog.open(db) as log:
        started = time.perf_counter()
        summary = export(log, ExportOptions(format="vip-llava", out=out, workers=workers))
        elapsed = time.perf_counter() - started
    assert summary.images == {"copied": IMAGES}, summary.images
    return elapsed


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-export-check-") as tmp:
        folder = Path(tmp)
        db, paths = build(folder)
        mb = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{IMAGES} JPEGs of {SIZE[0]}×{SIZE[1]} ({mb:.0f} MB); {default_workers()} cores")
        base = header_and_copy(paths, folder / "copy")
        one = checked_export(db, folder / "one", 1)
        every = checked_export(db, folder / "every", 0)
        print(f"before: header read + copy, 1 process   {base:6.2f} s  (1.00×)")
        print(f"after:  checked export, 1 worker        {one:6.2f} s  ({one / base:.2f}×)")
        print(f"after:  checked export, every core      {every:6.2f} s  ({every / base:.2f}×)")
        print(f"per image, whole export on one core: {1e3 * one / IMAGES:.0f} ms")
        rgb = per_image(paths, ov.load_image)
        verify = per_image(paths, ov.verify_image)
        print(
            f"per image: full RGB decode (load_image) {1e3 * rgb:.0f} ms, "
            f"verify_image (every byte, 1/8 scale) {1e3 * verify:.0f} ms ({rgb / verify:.1f}× less)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
