"""Which shards need a (re)run: a score missing, or written by another code version."""

from __future__ import annotations

import polars as pl

from curation_assets.ingest.registry import REGISTRY_TABLE
from curation_assets.store import SHARD_WRITES, ScoreStore


def shards_needing_run(store: ScoreStore, expected_versions: dict[str, str]) -> dict[str, list[str]]:
    """shard -> the assets that are missing or stale there (only shards that need work)."""
    tables = store.tables()
    if REGISTRY_TABLE not in tables:
        return {}
    shards = store.query(f"select distinct shard from {REGISTRY_TABLE} order by shard")["shard"].to_list()
    writes = store.query(f"select asset, shard, code_version from {SHARD_WRITES}") if SHARD_WRITES in tables else pl.DataFrame(
        schema={"asset": pl.Utf8, "shard": pl.Utf8, "code_version": pl.Utf8})
    written = {(r["asset"], r["shard"]): r["code_version"] for r in writes.iter_rows(named=True)}
    todo: dict[str, list[str]] = {}
    for shard in shards:
        stale = [asset for asset, version in expected_versions.items() if written.get((asset, shard)) != version]
        if stale:
            todo[shard] = stale
    return todo
