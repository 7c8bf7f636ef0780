"""Render workers never outlive their export, even one ended by ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dg_fixtures import ask, copy_photos

import overlays as ov
from data_gen.qalog.log import QALog

VIPSTUDIO = Path(sys.executable).parent / "vipstudio"


def _descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _living(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_an_export_ends_its_render_workers(tmp_path: Path) -> None:
    photos = copy_photos(tmp_path / "photos")
    db = tmp_path / "log.sqlite"
    with QALog.open(db) as log:
        images = [log.add_image(p) for p in photos.values()]
        for i in range(400):
            session = log.start_session(images[i % len(images)].id)
            box = [ov.Rectangle((10 + i % 50, 10, 90, 90))]
            ask(log, session, box, "What is <region>?", f"answer {i}")
    command = [
        str(VIPSTUDIO),
        "export",
        "--db",
        str(db),
        "--format",
        "llava-rendered",
        "--out",
        str(tmp_path / "ds"),
        "--workers",
        "2",
        "--rendered-format",
        "png",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            if list(tmp_path.glob(".ds.tmp-*/images/*.png")):
                workers = _descendants(proc.pid)
                if len(workers) >= 2:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, "the export finished before it could be killed"
        assert len(workers) >= 2, f"no render workers found below {proc.pid}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _living(workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _living(workers)
    finally:
        if proc.poll() is None:
            proc.kill()
    for pid in left:  # do not leave them behind when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the killed export still running: {sorted(left)}"
