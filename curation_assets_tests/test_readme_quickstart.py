"""The README's quick start, run as written, so it cannot drift from the code.

The README marks its quick-start commands as fenced blocks with the info string
`bash quickstart` (GitHub highlights them as bash) and what a block prints as the fenced
block right after it with the info string `text quickstart-output`. The slow test runs the
`bash quickstart` blocks in order, each with `bash -e`, in a temporary directory that
stands in for the clone (symlinks to the clone's `.venv`, `scripts` and `recipes`, so
nothing is written into the repository), with a PATH that holds none of the venv's tools
(a bare `curation-assets`, `dagster` or `duckdb` fails as it would in a fresh shell), and
compares what each printed with its output block: exactly, apart from what varies between
runs (durations, run ids, hashes, dates, and the clone's path, which the README shows as
SHOWN_ROOT). The funnel's counts are compared exactly: the demo corpus is deterministic.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
# The clone path the README's sample output shows (the README says so above the block).
SHOWN_ROOT = "/home/me/curation_assets"
RUN_INFO, OUTPUT_INFO = "bash quickstart", "text quickstart-output"
# What the temporary "clone" holds: links to the real clone's parts the commands use.
LINKED = (".venv", "scripts", "recipes", "workspace.yaml")
# Tools a fresh shell does not have (the venv's, and no duckdb CLI at all): the README calls them
# through .venv/bin/. PATH entries holding the venv's own console scripts are left out of the
# PATH the blocks get, so a bare call fails there as it would in a fresh shell.
VENV_TOOLS = ("curation-assets", "dagster", "duckdb", "pytest")
VENV_MARKERS = ("curation-assets", "dagster")
BLOCK_TIMEOUT_S = 900

_FENCE = re.compile(r"^```([^`\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)


def fenced_blocks(markdown: str) -> list[tuple[str, str]]:
    """Every fenced block as (info string, body), in order."""
    return [(m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(markdown)]


def quickstart_steps(markdown: str) -> list[tuple[str, str | None]]:
    """Each `bash quickstart` block with the `text quickstart-output` block right after it
    (None when the next block is something else)."""
    blocks = fenced_blocks(markdown)
    steps = []
    for i, (info, body) in enumerate(blocks):
        if info == RUN_INFO:
            follows = blocks[i + 1] if i + 1 < len(blocks) else None
            steps.append((body, follows[1] if follows and follows[0] == OUTPUT_INFO else None))
        elif info == OUTPUT_INFO and (i == 0 or blocks[i - 1][0] != RUN_INFO):
            raise AssertionError(f"a `{OUTPUT_INFO}` block must follow a `{RUN_INFO}` block:\n{body}")
    return steps


_VARYING = [
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?: ?UTC)?"), "<TIME>"),  # dates
    (re.compile(r"\b\d+(?:\.\d+)? s\b"), "<N> s"),  # durations: "ok in 46.2 s", "wall time 54.1 s"
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b"), "<HEX>"),  # run ids, recipe hashes, video ids
]


def normalize(text: str, roots: tuple[str, ...] = ()) -> str:
    """The printed text with what varies between runs replaced by placeholders."""
    for root in sorted(set(roots), key=len, reverse=True):  # the longest first: a root may contain another
        text = text.replace(root, SHOWN_ROOT)
    for pattern, placeholder in _VARYING:
        text = pattern.sub(placeholder, text)
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _clean_env() -> dict[str, str]:
    """The environment of a fresh shell: no venv tools on the PATH, no project settings."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if p and not any((Path(p) / tool).exists() for tool in VENV_MARKERS)]
    # CURATION_VENV stays: it says where this machine's dependency venv is (setup_venv.sh)
    env = {k: v for k, v in os.environ.items()
           if (k == "CURATION_VENV" or not k.startswith(("CURATION_", "DAGSTER_")))
           and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    # HF_HUB_OFFLINE as scripts/test.sh sets it (CI has no network); unbuffered, so that stdout
    # and stderr interleave as they do on a terminal
    env.update(PATH=os.pathsep.join(path), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


def test_readme_has_a_quickstart_with_sample_output():
    """Cheap structure check: the blocks the slow test runs are there, and call the venv's tools."""
    steps = quickstart_steps(README.read_text())
    assert steps, f"no `{RUN_INFO}` blocks in the README"
    assert any(expected is not None for _, expected in steps), f"no `{OUTPUT_INFO}` block in the README"
    commands = "\n".join(body for body, _ in steps)
    assert "curation-assets run" in commands
    for line in commands.splitlines():
        first = line.split()[0] if line.split() else ""
        assert first not in VENV_TOOLS + ("python", "python3"), f"bare {first!r} (not on the PATH): {line}"


def test_normalize_keeps_counts_and_drops_what_varies():
    printed = ("shard-00000: ok in 46.2 s - 13 videos: kept 6, rejected 4, failed 3 (run c2c85903)\n"
               "recipe: /tmp/x/my_data/recipe.yaml (stored by the run of 2026-12-04 08:14:40 UTC, from defaults); "
               "hash 2436cddf3e6a\n")
    shown = ("shard-00000: ok in 3.0 s - 13 videos: kept 6, rejected 4, failed 3 (run 0a1b2c3d)\n"
             f"recipe: {SHOWN_ROOT}/my_data/recipe.yaml (stored by the run of 2027-01-01 00:00:00 UTC, from defaults); "
             "hash 000000000001\n")
    assert normalize(printed, ("/tmp/x",)) == normalize(shown)
    assert normalize(printed.replace("kept 6", "kept 5"), ("/tmp/x",)) != normalize(shown)


@pytest.mark.slow
def test_readme_quickstart_runs_as_written(tmp_path: Path):
    missing = [name for name in LINKED if not (REPO_ROOT / name).exists()]
    if ".venv" in missing:
        pytest.skip("no .venv in the clone: run the tests through scripts/test.sh")
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in LINKED:
        if (REPO_ROOT / name).exists():
            (clone / name).symlink_to(REPO_ROOT / name)
    roots = (str(clone), str(clone.resolve()), str(REPO_ROOT), str(REPO_ROOT.resolve()))
    env = _clean_env()
    repo_entries = sorted(p.name for p in REPO_ROOT.iterdir())

    steps = quickstart_steps(README.read_text())
    assert steps, f"no `{RUN_INFO}` blocks in the README"
    compared = 0
    for number, (script, expected) in enumerate(steps, 1):
        done = subprocess.run(["bash", "-e", "-c", script], cwd=clone, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=BLOCK_TIMEOUT_S)
        assert done.returncode == 0, (
            f"quick-start block {number} exited with {done.returncode}:\n{script}\n--- it printed:\n{done.stdout}")
        if expected is not None:
            got, want = normalize(done.stdout, roots), normalize(expected)
            assert got == want, (
                f"quick-start block {number} printed something else than the README shows "
                f"(after normalizing times, ids and hashes).\n--- README:\n{want}\n--- printed:\n{got}")
            compared += 1
    assert compared, f"no `{OUTPUT_INFO}` block was compared"
    assert sorted(p.name for p in REPO_ROOT.iterdir()) == repo_entries, "the quick start wrote into the clone"
