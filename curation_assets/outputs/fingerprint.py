"""Whether the outputs (training set, score report) are up to date: a fingerprint of what they read.

The fingerprint hashes every store table's winners (shard, version) but the training set's own,
the recipe and model profile (thresholds, presets, weights) and the outputs' code versions. A
re-run of any shard is a new version, a new shard a new winner, a changed recipe a new hash:
each changes the fingerprint. It is computed before the outputs are built, so a shard written
while they build makes the next run build them again (never the other way round).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl

from curation_assets.store import SHARD_WRITES, ScoreStore

STATE_FILE = "outputs_state.json"  # in the data dir: the fingerprint of the last build and where it went
OWN_TABLES = {"lora_training_set"}


def inputs_fingerprint(store: ScoreStore, recipe_key: dict) -> str:
    digest = hashlib.sha256(json.dumps(recipe_key, sort_keys=True, default=str).encode())
    for table in sorted(store.tables() - {SHARD_WRITES} - OWN_TABLES):
        winners = store.winners(table).select("shard", "version").sort("shard")
        joined = winners.select(pl.concat_str(["shard", "version"], separator="@").str.join("\n")).item()
        digest.update(f"\n#{table}\n".encode())
        digest.update((joined or "").encode())
    return digest.hexdigest()[:32]


def up_to_date(data_dir: Path, fingerprint: str) -> dict | None:
    """The last build's state when it had this fingerprint and its files are still there."""
    path = Path(data_dir) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if state.get("fingerprint") != fingerprint:
        return None
    if not all(Path(p).is_file() for p in state.get("files", [])):
        return None
    return state


def record(data_dir: Path, fingerprint: str, files: list[str], lines: list[str]) -> None:
    import datetime as dt
    import os

    path = Path(data_dir) / STATE_FILE
    state = {"fingerprint": fingerprint, "files": files, "lines": lines,
             "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, path)
