"""The video registry: which file belongs to which shard partition.

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
    """Add entries not registered yet; return the new shard keys (possibly none)."""
    if shard_size < 1:
        raise ValueError("shard_size must be >= 1")
    with store.transaction() as con:
        con.execute(_create_sql())
        known = {r[0] for r in con.execute(f"select path from {REGISTRY_TABLE}").fetchall()}
        seq0 = con.execute(f"select coalesce(max(seq), -1) from {REGISTRY_TABLE}").fetchone()[0]
        # numeric, not string, max: 'shard-100000' sorts before 'shard-99999'
        numbers = [shard_number(r[0]) for r in con.execute(f"select distinct shard from {REGISTRY_TABLE}").fetchall()]
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
        con.register("new_registrations", frame.to_arrow())
        con.execute(f"insert into {REGISTRY_TABLE} by name select * from new_registrations")
        con.unregister("new_registrations")
    return sorted(set(frame["shard"].to_list()))


def registered_shards(store: ScoreStore) -> list[str]:
    if REGISTRY_TABLE not in store.tables():
        return []
    shards = store.query(f"select distinct shard from {REGISTRY_TABLE}")["shard"].to_list()
    return sorted(shards, key=shard_number)


def shard_members(store: ScoreStore, shard: str) -> pl.DataFrame:
    if REGISTRY_TABLE not in store.tables():
        return pl.DataFrame(schema=REGISTRY_SCHEMA)
    return store.query(f"select * from {REGISTRY_TABLE} where shard = ? order by seq", [shard])


def _create_sql() -> str:
    return (
        f"create table if not exists {REGISTRY_TABLE} (seq bigint primary key, path varchar unique, "
        "shard varchar, manifest_text varchar, origin varchar, registration_error varchar, "
        "registered_at timestamp)"
    )
