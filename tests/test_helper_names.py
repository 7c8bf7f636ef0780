"""The test folders are put on ``sys.path`` (pytest's rootdir-less "prepend" import mode), so a
helper module name used in two of them makes whichever loads second import the first one's
file: a full run then fails with ImportError where a single folder passes."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_every_helper_module_name_is_unique_across_test_folders() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name in {"conftest.py", "__init__.py"}:
            continue
        seen[path.stem].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not clashes, f"rename one of each: {clashes}"
