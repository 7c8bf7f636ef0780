"""The import contract (STYLE.md habit 1): the core packages never import Qt, and `overlays`
does not import torch. Checked in a fresh interpreter, after real use, via sys.modules."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

QT_PREFIXES = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pytestqt", "qtpy")


def _modules_after(code: str) -> set[str]:
    """The top-level module names loaded after running ``code`` in a fresh interpreter."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json, sys
        print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def _qt(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith(QT_PREFIXES))


OVERLAYS_IN_USE = """
    import random
    from PIL import Image
    import overlays as ov

    image = Image.new("RGB", (400, 300), (90, 90, 90))
    region = ov.Region((50.5, 40.0, 250.0, 200.0), polygons=(((50.5, 40), (250, 60), (120, 200)),))
    prompts = [ov.generate(kind, region, image.size, rng=1) for kind in ov.KINDS]
    out = ov.render(image, ov.assign_distinct_colors(prompts))  # the contour path uses cv2
    ov.model_view(out)
    ov.loads(ov.dumps(prompts))
    [ov.referring_phrase(p) for p in prompts]
    ov.sample_style("arrow", random.Random(0))
"""


def test_overlays_imports_neither_qt_nor_torch() -> None:
    modules = _modules_after(OVERLAYS_IN_USE)
    assert "overlays" in modules and "PIL" in modules
    assert _qt(modules) == [], f"overlays pulled in Qt: {_qt(modules)}"
    assert "torch" not in modules, "overlays must not import torch"
    assert "transformers" not in modules


@pytest.mark.parametrize("package", ["vip_model", "data_gen"])
def test_core_package_does_not_import_qt(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} does not exist yet")
    modules = _modules_after(f"import {package}")
    assert package in modules
    assert _qt(modules) == [], f"importing {package} pulled in Qt: {_qt(modules)}"


@pytest.mark.slow
@pytest.mark.parametrize("package", ["overlays", "vip_model", "data_gen"])
def test_no_submodule_of_a_core_package_imports_qt(package: str) -> None:
    """Every submodule, including those loaded lazily (the engine, the server, exporters)."""
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} does not exist yet")
    walk = f"""
        import importlib, pkgutil
        import {package}
        for info in pkgutil.walk_packages({package}.__path__, "{package}."):
            importlib.import_module(info.name)
    """
    modules = _modules_after(walk)
    assert _qt(modules) == [], f"a {package} submodule pulled in Qt: {_qt(modules)}"
    if package == "overlays":
        assert "torch" not in modules


def test_the_check_would_see_qt() -> None:
    """The probe is not vacuous: importing PySide6 shows up (skipped where Qt is absent)."""
    if importlib.util.find_spec("PySide6") is None:
        pytest.skip("PySide6 not installed")
    assert _qt(_modules_after("import PySide6.QtCore")) != []
