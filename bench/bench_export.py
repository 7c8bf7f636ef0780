"""Export benchmark: 10,000 logged turns written in every format, and the cost of augmentation.

The log is built through the log's API: the four sample photos plus a 1920×1280 one, sessions of
1–4 turns on one drawing (every prompt kind), 10 % rejected, 10 % corrected. Each format is
exported with every core (`--workers 0`); augmentation is measured as the extra time of
`--augment 1` over a plain llava-rendered export, per augmented sample. Wall time is what a user
waits; CPU time (this process and its workers) is steadier on a shared machine.
"""

from __future__ import annotations

import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

import overlays as ov
from data_gen.base import ExportOptions
from data_gen.export import export
from data_gen.parallel import default_workers
from data_gen.qalog.log import NewTurn, QALog

ROOT = Path(__file__).resolve().parents[1]
TURNS = 10_000


def build_log(folder: Path) -> Path:
    photos = sorted((ROOT / "assets/samples").glob("*.jpg"))
    big = folder / "big.jpg"
    Image.open(photos[0]).convert("RGB").resize((1920, 1280)).save(big, quality=90)
    db = folder / "log.sqlite"
    rng = random.Random(0)
    with QALog.open(db) as log:
        images = [log.add_image(p) for p in [*photos, big]]
        n = 0
        while n < TURNS:
            image = rng.choice(images)
            size = (image.width, image.height)
            session = log.start_session(image.id)
            x, y = rng.uniform(0, size[0] / 2), rng.uniform(0, size[1] / 2)
            region = ov.Region((x, y, x + size[0] / 3, y + size[1] / 3))
            prompts = [ov.generate(rng.choice(ov.KINDS), region, size, rng, label="thing")]
            for _ in range(min(rng.randint(1, 4), TURNS - n)):
                question, refs = ov.compose_question(f"What is <region>? ({n})", prompts)
                answer = f"Answer {n}."
                turn = NewTurn(
                    session, prompts, question, answer, "m", "llava_v1", question_refs=refs
                )
                turn_id = log.add_turn(turn)
                roll = rng.random()
                if roll < 0.1:
                    log.review(turn_id, "rejected")
                elif roll < 0.2:
                    log.review(turn_id, "edited", f"Corrected answer {n}.")
                n += 1
    return db


def cpu_seconds() -> float:
    """CPU time of this process and every process below it, reaped or alive (Linux /proc).

    Render workers are children of multiprocessing's fork server, which stays alive: their time
    shows in its cutime/cstime once they exit, never in this process's RUSAGE_CHILDREN.
    """
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, list[tuple[int, float]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the name: state ppid … utime(12) stime(13) cutime(14) cstime(15), 0-based here
        ppid = int(fields[1])
        cpu = sum(int(v) for v in fields[11:15]) / tick
        parents.setdefault(ppid, []).append((int(stat.parent.name), cpu))
    todo = [os.getpid()]
    while todo:
        for pid, cpu in parents.get(todo.pop(), []):
            total += cpu
            todo.append(pid)
    return total


def timed(db: Path, out: Path, fmt: str, **kw: object) -> tuple[float, float, dict]:
    with QALog.open(db) as log:
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        summary = export(log, ExportOptions(format=fmt, out=out, overwrite=True, **kw))  # type: ignore[arg-type]
        return time.perf_counter() - wall0, cpu_seconds() - cpu0, summary.to_dict()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        db = build_log(folder)
        built = time.perf_counter() - t0
        print(f"log: {TURNS} turns built in {built:.1f} s; {default_workers()} render workers")
        print(f"{'format':<16} {'records':>8} {'wall s':>7} {'turns/s':>8} {'cpu s':>7}")
        for fmt in ("vip-llava", "llava-rendered", "llama-factory", "hf"):
            wall, cpu, summary = timed(db, folder / fmt, fmt, val_fraction=0.1)
            records = sum(summary["records"].values())
            print(f"{fmt:<16} {records:>8} {wall:>7.1f} {TURNS / wall:>8.0f} {cpu:>7.1f}")
        base_wall, base_cpu, _ = timed(db, folder / "plain", "llava-rendered")
        aug_wall, aug_cpu, summary = timed(db, folder / "aug", "llava-rendered", augment=1)
        extra = summary["augmented"]
        print(
            f"augmentation (--augment 1, llava-rendered): {extra} extra samples, "
            f"+{aug_wall - base_wall:.1f} s wall (+{1e3 * (aug_wall - base_wall) / extra:.1f} ms "
            f"per sample), +{aug_cpu - base_cpu:.1f} s CPU "
            f"({1e3 * (aug_cpu - base_cpu) / extra:.1f} ms CPU per sample)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
