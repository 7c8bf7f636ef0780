"""Comments cite the facts documents by path and section (``docs/VIP_FACTS.md §3``): every
citation names a file that is in the repository and a section that file has."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = ("overlays", "vip_model", "app", "data_gen", "tests", "bench")
# A mention of a facts document, with the path before it and the sections after it.
CITATION = re.compile(r"(\S*?)\b(VIP_FACTS|VIDEO_FACTS)\b(\.md)?((?:,? ?§\d+)*)")


def _sections(document: Path) -> set[str]:
    text = document.read_text(encoding="utf-8")
    return set(re.findall(r"^## (\d+)\.", text, flags=re.MULTILINE))


def test_every_facts_citation_names_docs_and_an_existing_section() -> None:
    sections = {name: _sections(ROOT / "docs" / f"{name}.md") for name in ("VIP_FACTS",)}
    assert sections["VIP_FACTS"] >= {"1", "2", "3", "4", "5", "6", "7", "8"}
    bad, seen = [], 0
    files = sorted(p for folder in CODE for p in (ROOT / folder).rglob("*.py"))
    for path in (p for p in files if p != Path(__file__).resolve()):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for prefix, name, md, cited in CITATION.findall(line):
                seen += 1
                where = f"{path.relative_to(ROOT)}:{lineno}"
                numbers = re.findall(r"\d+", cited)
                if not (prefix.endswith("docs/") and md and numbers):
                    bad.append(f"{where}: cite it as docs/{name}.md §N")
                elif not (ROOT / "docs" / f"{name}.md").is_file():
                    bad.append(f"{where}: docs/{name}.md is not in the repository")
                elif name in sections and not set(numbers) <= sections[name]:
                    bad.append(f"{where}: docs/{name}.md has no section {cited.strip()}")
    assert seen > 10, "the scan found no citations: the pattern is broken"
    assert bad == [], "\n".join(bad)


def test_readme_links_the_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/VIP_FACTS.md)" in readme and "(docs/VIDEO_FACTS.md)" in readme
