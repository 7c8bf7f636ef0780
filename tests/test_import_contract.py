"""The import contract (STYLE.md habits 1 and 16): the core packages (`overlays`, `vip_model`,
`data_gen` with the Q&A log in `data_gen.qalog`) never import Qt, click or the front doors
(`app`), and `overlays` does not import torch. Checked in a fresh interpreter, after real use,
via sys.modules, and in the source."""

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
@pytest.mark.parametrize("package", ["overlays", "vip_model", "data_gen", "data_gen.qalog"])
def test_no_submodule_of_a_core_package_imports_qt_click_or_app(package: str) -> None:
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
    assert "app" not in modules, f"a {package} submodule imports the front doors (app)"
    if package == "overlays":
        assert "torch" not in modules


LOG_IN_USE = """
    import tempfile
    from pathlib import Path
    from data_gen.qalog.log import QALog

    with QALog.open(Path(tempfile.mkdtemp()) / "log.db") as log:
        log.turns()
"""


def test_the_log_loads_neither_click_nor_sqlite_utils() -> None:
    """The log speaks to SQLite through the standard library only: sqlite-utils was dropped
    (it built an object nothing read, and it pulled click and ~1 s of imports into the core)."""
    modules = _modules_after(LOG_IN_USE)
    assert "sqlite3" in modules
    assert "click" not in modules and "sqlite_utils" not in modules


def test_the_check_would_see_qt() -> None:
    """The probe is not vacuous: importing PySide6 shows up (skipped where Qt is absent)."""
    if importlib.util.find_spec("PySide6") is None:
        pytest.skip("PySide6 not installed")
    assert _qt(_modules_after("import PySide6.QtCore")) != []


FORBIDDEN_IN_CORE = ("app", "click", *QT_PREFIXES)


@pytest.mark.parametrize("package", ["overlays", "vip_model", "data_gen"])
def test_core_source_imports_neither_app_click_nor_qt(package: str) -> None:
    """Read from the source, lazy imports inside functions included. (At run time click may
    still be loaded by a library: theirs, not a dependency of ours.)"""
    import ast
    from pathlib import Path

    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [
                f"{path.relative_to(root.parent)}:{node.lineno} imports {name}"
                for name in names
                if name.split(".")[0] in FORBIDDEN_IN_CORE
            ]
    assert found == [], "\n".join(found)
