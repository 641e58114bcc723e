"""The video registry: which file belongs to which shard partition (one object per shard).

Registration is append-only: new files always open new shards, an existing shard's members
never change, so a materialized partition stays a faithful record of its inputs.
"""

from __future__ import annotations

import datetime as dt
import re

import polars as pl

from curation_assets.ingest.discover import InputEntry
from curation_assets.store import ScoreStore

REGISTRY_TABLE = "video_registry"
SHARD_PREFIX = "shard-"
_SHARD_RE = re.compile(r"^shard-(\d+)$")

REGISTRY_SCHEMA = {
    "seq": pl.Int64,
    "path": pl.Utf8,
    "shard": pl.Utf8,
    "manifest_text": pl.Utf8,
    "origin": pl.Utf8,
    "registration_error": pl.Utf8,
    "registered_at": pl.Datetime("us"),
}


def shard_key(number: int) -> str:
    return f"{SHARD_PREFIX}{number:05d}"


def shard_number(key: str) -> int:
    match = _SHARD_RE.match(key)
    if not match:
        raise ValueError(f"not a shard key: {key!r}")
    return int(match.group(1))


def register(store: ScoreStore, entries: list[InputEntry], shard_size: int) -> list[str]:
    """Add entries not registered yet; return the new shard keys (possibly none).

    Single writer: the whole read-decide-write runs under the store's registry lock. Each new
    shard's members are published as one immutable object (`tables/video_registry/<shard>`),
    never rewritten, so shard membership is exactly what the first write said. A crash between
    two shard objects leaves whole shards only: the next call registers the rest.
    """
    if shard_size < 1:
        raise ValueError("shard_size must be >= 1")
    with store.registry_lock():
        if REGISTRY_TABLE in store.tables():
            state = store.query(f"select path, seq, shard from {REGISTRY_TABLE}")
            known = set(state["path"].to_list())
            seq0 = int(state["seq"].max()) if state.height else -1
            # numeric, not string, max: 'shard-100000' sorts before 'shard-99999'
            numbers = [shard_number(s) for s in set(state["shard"].to_list())]
        else:
            known, seq0, numbers = set(), -1, []
        fresh, seen = [], set()
        for entry in entries:
            if entry.path in known:
                continue  # registered by an earlier call: re-running an input is idempotent
            if entry.path in seen:
                if entry.locator and entry.locator not in known and entry.locator not in seen:
                    # a second manifest line naming the same file is recorded, not silently dropped
                    seen.add(entry.locator)
                    fresh.append(InputEntry(entry.locator, entry.text, entry.origin,
                                            f"same file as an earlier manifest entry ({entry.path})"))
                continue
            seen.add(entry.path)
            fresh.append(entry)
        if not fresh:
            return []
        first_shard = max(numbers) + 1 if numbers else 0
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        rows = []
        for i, entry in enumerate(fresh):
            rows.append({
                "seq": seq0 + 1 + i,
                "path": entry.path,
                "shard": shard_key(first_shard + i // shard_size),
                "manifest_text": entry.text,
                "origin": entry.origin,
                "registration_error": entry.error,
                "registered_at": now,
            })
        frame = pl.DataFrame(rows, schema=REGISTRY_SCHEMA)
        new_shards = sorted(set(frame["shard"].to_list()), key=shard_number)
        for shard in new_shards:
            store.replace_partition(REGISTRY_TABLE, shard, frame.filter(pl.col("shard") == shard))
    return new_shards


def registered_shards(store: ScoreStore) -> list[str]:
    # one object per shard: the listing is the membership, no footer or row is read
    return sorted((s for s in store.shards(REGISTRY_TABLE) if _SHARD_RE.match(s)), key=shard_number)


def shard_members(store: ScoreStore, shard: str) -> pl.DataFrame:
    if REGISTRY_TABLE not in store.tables():
        return pl.DataFrame(schema=REGISTRY_SCHEMA)
    return store.read_shard(REGISTRY_TABLE, shard).sort("seq")
