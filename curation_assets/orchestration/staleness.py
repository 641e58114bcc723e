"""Which shards need a (re)run: a score missing, written by another code version, or unreadable."""

from __future__ import annotations

import polars as pl

from curation_assets.ingest.registry import REGISTRY_TABLE
from curation_assets.store import ScoreStore


def shards_needing_run(store: ScoreStore, expected_versions: dict[str, str],
                       unreadable: list | None = None) -> dict[str, list[str]]:
    """shard -> the assets that are missing or stale there (only shards that need work).

    From the tables' winners (object names and the shard index): nothing is read per shard, so
    this costs the same at 10M clips as at 1M. `unreadable` (ScoreStore.unreadable()): objects
    that cannot be read count as missing, so a run rewrites them."""
    tables = store.tables()
    if REGISTRY_TABLE not in tables:
        return {}
    shards = store.winners(REGISTRY_TABLE).select("shard")
    broken = {(u.table, s) for u in unreadable or [] for s in u.shards}
    parts = []
    for order, (asset, version) in enumerate(expected_versions.items()):
        written = store.winners(asset).select("shard", "code_version") if asset in tables else \
            pl.DataFrame(schema={"shard": pl.Utf8, "code_version": pl.Utf8})
        stale = shards.join(written, on="shard", how="left").filter(
            pl.col("code_version").is_null() | (pl.col("code_version") != version))
        bad = [s for (t, s) in broken if t == asset]
        if bad:
            stale = pl.concat([stale.select("shard"), pl.DataFrame({"shard": bad})]).unique()
        parts.append(stale.select("shard", pl.lit(order).alias("order"), pl.lit(asset).alias("asset")))
    if not parts:
        return {}
    todo = pl.concat(parts).unique(["shard", "asset"]).sort("shard", "order")
    out: dict[str, list[str]] = {}
    for (shard,), group in todo.group_by("shard", maintain_order=True):
        out[shard] = group["asset"].to_list()
    return out
