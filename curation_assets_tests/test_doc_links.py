"""The README and docs/ stand alone and stay in step with the repository.

- every relative link points at a file that exists, and an `#anchor` at a heading there;
- no page sends the reader outside the repository (`../shared`, ARCHITECTURE.md);
- the README stays a five-minute read (under 300 lines);
- docs/layout.md names every module of the package;
- commands in bash blocks call the venv's tools through `.venv/bin/` (a fresh shell has no
  bare `curation-assets`, `dagster`, `python` of the venv, and no `duckdb` binary at all).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 300
OUTSIDE = ("../shared", "ARCHITECTURE.md")
# Commands that exist only in the venv (or not at all: no duckdb CLI is installed).
BARE = {"curation-assets", "dagster", "dagster-webserver", "duckdb", "pytest", "python", "python3", "pip", "ray", "hf"}

_FENCE = re.compile(r"^```([^`\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
_INLINE_CODE = re.compile(r"`[^`\n]*`")


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO_ROOT))


def _prose(markdown: str) -> str:
    """The page without fenced blocks and inline code (where links and headings do not count)."""
    return _INLINE_CODE.sub("", _FENCE.sub("", markdown))


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the page's headings."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in _FENCE.sub("", markdown).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def test_pages_exist():
    assert (REPO_ROOT / "docs" / "README.md").is_file()
    assert len(PAGES) > 2


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_relative_links_resolve(page: Path):
    text = page.read_text()
    broken = []
    for target in _LINK.findall(_prose(text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif not dest.resolve().is_relative_to(REPO_ROOT):
            broken.append(f"{target}: outside the repository")
        elif anchor and dest.suffix == ".md" and anchor not in github_anchors(dest.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO_ROOT)}")
    assert not broken, f"{_page_id(page)}: broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_pages_stay_inside_the_repository(page: Path):
    text = page.read_text()
    found = [word for word in OUTSIDE if word in text]
    assert not found, f"{_page_id(page)} mentions {found}: the docs must stand alone"


def test_readme_is_short():
    lines = len((REPO_ROOT / "README.md").read_text().splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines: move detail into docs/"


def test_layout_names_every_module():
    layout = (REPO_ROOT / "docs" / "layout.md").read_text()
    package = REPO_ROOT / "curation_assets"
    missing = []
    for module in sorted(package.rglob("*.py")):
        rel = module.relative_to(package)
        if "__pycache__" in rel.parts:
            continue
        name = f"{rel.parent.as_posix()}/" if rel.name == "__init__.py" else rel.as_posix()
        if name != "./" and f"`{name}`" not in layout:
            missing.append(name)
    assert not missing, f"docs/layout.md does not name: {missing}"


def _commands(script: str):
    """The command words of a bash block: first word of each pipeline stage, after VAR=value."""
    script = re.sub(r"\\\n", " ", script)
    for line in script.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line)  # comments
        for stage in re.split(r"&&|\|\||;|\||\$\(", line):
            words = stage.split()
            while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                words.pop(0)
            if words:
                yield words[0], line.strip()


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_commands_use_the_venv(page: Path):
    bad = []
    for info, body in ((m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(page.read_text())):
        if info.split()[:1] not in (["bash"], ["sh"]):
            continue
        bad += [line for word, line in _commands(body) if word in BARE]
    assert not bad, (f"{_page_id(page)}: commands not on a fresh shell's PATH (use .venv/bin/...):\n"
                     + "\n".join(bad))
