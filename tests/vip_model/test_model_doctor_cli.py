"""`vipstudio doctor` / `make-tiny-model` through the real console script, and the doctor API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from app import cli
from vip_model import diagnose
from vip_model.tiny import VIP_FEATURE_LAYERS

VIPSTUDIO = Path(sys.executable).with_name("vipstudio")
NAMES = [
    "versions",
    "device",
    "cuda",
    "bitsandbytes",
    "flash-attn",
    "memory",
    "hub access",
    "models",
]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(VIPSTUDIO), *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


def _hub_cache(root: Path, model: Path) -> Path:
    repo = root / "models--llava-hf--vip-llava-7b-hf"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(model, repo / "snapshots" / commit)
    return root


def test_diagnose_reports_every_check_with_fixes_for_what_is_missing(tmp_path: Path) -> None:
    checks = diagnose(str(tmp_path / "no-cache"))
    assert [c.name for c in checks] == NAMES
    for c in checks:
        assert c.status in ("ok", "missing", "n/a") and c.detail
        if c.status == "missing":
            assert c.fix, f"{c.name} is missing but says nothing about the fix"
    models = checks[-1]
    assert models.status == "missing" and "huggingface-cli download" in (models.fix or "")
    assert checks[NAMES.index("hub access")].detail.startswith("offline")


def test_diagnose_lists_vip_llava_models_in_the_cache(tmp_path: Path, tiny_model_dir: Path) -> None:
    cache = _hub_cache(tmp_path / "hub", tiny_model_dir)
    models = diagnose(str(cache))[-1]
    assert models.status == "ok" and "llava-hf/vip-llava-7b-hf" in models.detail


def test_cli_doctor(tmp_path: Path, tiny_model_dir: Path) -> None:
    cache = _hub_cache(tmp_path / "hub", tiny_model_dir)
    done = run("doctor", "--json", "--cache-dir", str(cache))  # the real console script
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["name"] for r in rows] == NAMES
    assert rows[-1]["status"] == "ok" and "llava-hf/vip-llava-7b-hf" in rows[-1]["detail"]

    text = CliRunner().invoke(cli.main, ["doctor", "--cache-dir", str(tmp_path / "none")])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    for name in NAMES:
        assert any(f"  {name} " in line for line in lines), name
    assert lines[-1].strip().startswith("fix: download it with `huggingface-cli download")


def test_cli_make_tiny_model(tmp_path: Path) -> None:
    done = run("make-tiny-model", str(tmp_path / "m"), "--seed", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "16 image tokens" in done.stderr
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["vision_feature_layer"] == list(VIP_FEATURE_LAYERS)

    again = run("make-tiny-model", str(tmp_path / "m"))
    assert again.returncode == 1
    assert again.stderr.startswith("Error: ") and "--overwrite" in again.stderr
    assert "Traceback" not in again.stderr

    bad = run("make-tiny-model", str(tmp_path / "x"), "--scale", "huge")
    assert bad.returncode == 2 and "huge" in bad.stderr

    stale = CliRunner().invoke(
        cli.main, ["make-tiny-model", str(tmp_path / "m"), "--overwrite", "--stale-config"]
    )
    assert stale.exit_code == 0, stale.output
    assert json.loads((tmp_path / "m" / "config.json").read_text())["vision_feature_layer"] == -2


@pytest.mark.parametrize("command", ["doctor", "make-tiny-model"])
def test_cli_help_has_an_example(command: str) -> None:
    done = CliRunner().invoke(cli.main, [command, "--help"])
    assert done.exit_code == 0
    assert f"vipstudio {command}" in done.output


def test_vip_model_never_imports_qt(tiny_model_dir: Path) -> None:
    code = (
        "import sys\n"
        "import vip_model, vip_model.hf, vip_model.doctor, vip_model.tiny, vip_model.loading\n"
        "from vip_model import HFEngine, diagnose\n"
        f"HFEngine({str(tiny_model_dir)!r})\n"
        "diagnose()\n"
        "qt = {'PySide6', 'PyQt5', 'PyQt6', 'shiboken6'}\n"
        "qt = sorted(m for m in sys.modules if m.split('.')[0] in qt)\n"
        "assert not qt, qt\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
