"""The core installs and runs headless (a cluster worker has no Qt, no server, maybe no Ray)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"

# Runs in a fresh interpreter where PySide6 (and the server's packages) cannot be imported.
SCRIPT = """
import sys
for name in ("PySide6", "shiboken6", "fastapi", "uvicorn"):
    sys.modules[name] = None
import overlays, vip_model.engine, data_gen, data_gen.export, app.cli, app.batch, app.batch_ray
from click.testing import CliRunner
from app.cli import main

def run(*args):
    result = CliRunner().invoke(main, list(args))
    print(repr(result.output), result.exit_code)
    return result

assert "--ray" in run("ask", "--help").output
batch = run("ask", "--batch", sys.argv[1], "--out", sys.argv[2], "--model", sys.argv[3],
            "--max-new-tokens", "4", "--no-log")
assert batch.exit_code == 0, batch.output
gui = run("gui")
assert gui.exit_code == 1 and "vip-studio[gui]" in gui.output, gui.output
serve = run("serve", "--model", sys.argv[3])
assert serve.exit_code == 1 and "vip-studio[serve]" in serve.output, serve.output
assert "PySide6.QtCore" not in sys.modules
print("HEADLESS OK")
"""


def test_core_and_batch_work_without_qt_and_the_gui_names_its_extra(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    queries, out = tmp_path / "q.jsonl", tmp_path / "a.jsonl"
    queries.write_text(
        json.dumps(
            {
                "id": "a",
                "image": str(SAMPLES / "coffee.jpg"),
                "question": "What is <region0>?",
                "bboxes": [[10, 10, 100, 100]],
            }
        )
        + "\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(queries), str(out), str(tiny_model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert "HEADLESS OK" in result.stdout, result.stdout + result.stderr
    assert json.loads(out.read_text())["id"] == "a"
