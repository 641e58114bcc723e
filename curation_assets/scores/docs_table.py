"""The docs' table of scores, made from the declarations so it cannot drift from the code.

    .venv/bin/python -m curation_assets.scores.docs_table           # print it
    .venv/bin/python -m curation_assets.scores.docs_table --write   # rewrite it in README.md and docs/scores.md

Each file holds the table between the markers below; a test checks they equal what this
prints (built-in scores only: an installed plugin does not change the committed docs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

START, END = "<!-- scores-table:start -->", "<!-- scores-table:end -->"
FILES = ("README.md", "docs/scores.md")


def scores_table(scores=None) -> str:
    """One row per score: what it measures (its description's first sentence), its column(s)
    in curated_videos, its threshold keys with their defaults."""
    from curation_assets.scores.registry import builtin_scores

    scores = builtin_scores() if scores is None else scores
    lines = ["| score | what it measures | column | threshold keys (default) |", "|---|---|---|---|"]
    for decl in scores:
        measures = decl.description.split(". ")[0].rstrip(".")
        notes = [note for flag, note in ((decl.needs_caption, "captioned clips only"),
                                         (decl.model and not decl.weights_in_every_profile, "a model"),
                                         (decl.switchable, "can be switched off")) if flag]
        if notes:
            measures += f" ({'; '.join(notes)})"
        columns = ", ".join(f"`{curated}`" for curated in decl.value_columns)
        bounds = ", ".join(f"`{b.key}` ({_default(b.default)})" for b in decl.bounds) or "-"
        lines.append(f"| {decl.name} | {measures} | {columns} | {bounds} |")
    return "\n".join(lines)


def _default(value) -> str:
    return "null" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def replace_table(text: str, table: str) -> str:
    start, end = text.index(START) + len(START), text.index(END)
    return text[:start] + "\n" + table + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the table in {', '.join(FILES)}")
    args = parser.parse_args(argv)
    table = scores_table()
    if not args.write:
        print(table)
        return 0
    root = Path(__file__).resolve().parents[2]
    for name in FILES:
        path = root / name
        if path.is_file() and START in path.read_text():
            path.write_text(replace_table(path.read_text(), table))
            print(f"wrote the table of scores into {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
