"""The video registry: which file belongs to which shard partition (one object per shard).

Registration is append-only: new files always open new shards, an existing shard's members
never change, so a materialized partition stays a faithful record of its inputs.
"""

from __future__ import annotations

import datetime as dt
import re

import polars as pl

from curation_assets.ingest.discover import InputEntry, entries_frame
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
    "shard_size": pl.Int64,  # the size this shard was opened with (null: written before sizes grew)
}
# Shard size grows with the corpus so that 10M clips stay well under Dagster's advice for
# partitions (tens of thousands): at least 64, else the power of two that keeps the corpus at
# <= PARTITIONS_TARGET shards (1M clips: 64, i.e. 15,625 shards; 10M: 512, 19,531 shards).
MIN_SHARD_SIZE = 64
PARTITIONS_TARGET = 25_000


def shard_key(number: int) -> str:
    return f"{SHARD_PREFIX}{number:05d}"


def shard_number(key: str) -> int:
    match = _SHARD_RE.match(key)
    if not match:
        raise ValueError(f"not a shard key: {key!r}")
    return int(match.group(1))


def auto_shard_size(registered_total: int) -> int:
    """The size of new shards for a corpus of `registered_total` files (after this registration)."""
    need = -(-max(registered_total, 1) // PARTITIONS_TARGET)
    size = MIN_SHARD_SIZE
    while size < need:
        size *= 2
    return size


def register(store: ScoreStore, entries: list[InputEntry] | pl.DataFrame, shard_size: int | None = None) -> list[str]:
    """Add entries (InputEntry objects, or their columns: ENTRY_SCHEMA) not registered yet;
    return the new shard keys (possibly none).

    Single writer: the whole read-decide-write runs under the store's registry lock. Each new
    shard's members are published as one immutable object (`tables/video_registry/<shard>@...`),
    never rewritten, so shard membership is exactly what the first write said. A crash between
    two shard objects leaves whole shards only: the next call registers the rest.
    `shard_size` None: it grows with the corpus (`auto_shard_size`); existing shards never change.
    Only the entries' own paths are looked up in the registry, never all of it (a caller that
    looked its entries up before passes only those it did not find: `RunInput.to_register`).
    """
    if shard_size is not None and shard_size < 1:
        raise ValueError("shard_size must be >= 1")
    entries = entries if isinstance(entries, pl.DataFrame) else entries_frame(entries)
    if entries.is_empty():
        return []
    with store.registry_lock():
        has_registry = REGISTRY_TABLE in store.tables()
        unsure = pl.concat([entries["path"], entries["locator"].drop_nulls()]).unique()
        found = unsure.filter(shards_by_row(store, unsure).is_not_null()) if has_registry else unsure.clear()
        fresh = _unregistered(entries, found)
        if fresh.is_empty():
            return []
        winners = store.winners(REGISTRY_TABLE) if has_registry else pl.DataFrame(schema={"shard": pl.Utf8, "rows": pl.Int64})
        # numeric, not string, max: 'shard-100000' sorts before 'shard-99999'
        numbers = [shard_number(s) for s in winners["shard"].to_list() if _SHARD_RE.match(s)]
        last = max(numbers) if numbers else None
        seq0 = -1
        if last is not None:  # append-only: the newest shard holds the highest seq
            seqs = store.read_shard(REGISTRY_TABLE, shard_key(last), columns=["seq"])["seq"]
            seq0 = int(seqs.max()) if seqs.len() else -1
        size = shard_size or auto_shard_size(int(winners["rows"].sum() or 0) + fresh.height)
        first_shard = last + 1 if last is not None else 0
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        order = pl.int_range(fresh.height, dtype=pl.Int64)
        frame = fresh.select(
            (order + seq0 + 1).alias("seq"), "path",
            pl.format(f"{SHARD_PREFIX}{{}}", (order // size + first_shard).cast(pl.Utf8).str.zfill(5)).alias("shard"),
            pl.col("text").alias("manifest_text"), "origin", pl.col("error").alias("registration_error"),
            pl.lit(now, pl.Datetime("us")).alias("registered_at"), pl.lit(size, pl.Int64).alias("shard_size"),
        ).cast(REGISTRY_SCHEMA)
        new_shards = []
        for (shard,), part in frame.group_by("shard", maintain_order=True):
            store.replace_partition(REGISTRY_TABLE, shard, part, new_key=True)  # under the lock: a new shard
            new_shards.append(shard)
    return new_shards


def _unregistered(entries: pl.DataFrame, known: pl.Series) -> pl.DataFrame:
    """The entries to register, in their order: the first entry of each path not in `known`
    (re-running an input is idempotent); a later manifest line naming the same file is recorded
    as a failed entry of its own under its locator, not silently dropped (once)."""
    rows = entries.with_row_index("_order").filter(~pl.col("path").is_in(known.implode()))
    first = pl.col("path").is_first_distinct()
    firsts = rows.filter(first)
    copies = rows.filter(~first & pl.col("locator").is_not_null() & ~pl.col("locator").is_in(known.implode())
                         & ~pl.col("locator").is_in(firsts["path"].implode()))
    copies = copies.filter(pl.col("locator").is_first_distinct()).select(
        "_order", pl.col("locator").alias("path"), "text", "origin",
        pl.format("same file as an earlier manifest entry ({})", "path").alias("error"), pl.lit(None, pl.Utf8).alias("locator"))
    return pl.concat([firsts, copies]).sort("_order").drop("_order")


LOOKUP_CHUNK = 1 << 20  # paths per registry lookup: DuckDB's hash table holds one chunk's paths


def shards_by_row(store: ScoreStore, paths: pl.Series) -> pl.Series:
    """Each of `paths`' shard, in their order (null: not registered). Only row numbers and shards
    come back out of DuckDB, and the paths go in a chunk at a time: at ten million paths one
    lookup held the paths three times over (the frame given to DuckDB, its hash table, the
    (path, shard) rows it returned), 2 GB of a first run's 4.9."""
    n = len(paths)
    shard = pl.repeat(None, n, dtype=pl.Utf8, eager=True).alias("shard")
    if not n or REGISTRY_TABLE not in store.tables():
        return shard
    found = []
    for start in range(0, n, LOOKUP_CHUNK):
        part = paths.slice(start, LOOKUP_CHUNK).alias("path")
        wanted = pl.DataFrame([pl.int_range(start, start + len(part), dtype=pl.Int64, eager=True).alias("i"), part])
        found.append(store.query(f"select w.i, r.shard from {REGISTRY_TABLE} r join _wanted_paths w on r.path = w.path",
                                 frames={"_wanted_paths": wanted}))
    found = pl.concat(found)
    # a path registered twice (two registrations racing, before the lock): one of its shards
    return shard.scatter(found["i"], found["shard"]) if found.height else shard


def registered_shards(store: ScoreStore) -> list[str]:
    # the registry's winners (object names and the index): no footer or row is read
    if REGISTRY_TABLE not in store.tables():
        return []
    return sorted((s for s in store.shards(REGISTRY_TABLE) if _SHARD_RE.match(s)), key=shard_number)


def shard_members(store: ScoreStore, shard: str) -> pl.DataFrame:
    if REGISTRY_TABLE not in store.tables():
        return pl.DataFrame(schema=REGISTRY_SCHEMA)
    return store.read_shard(REGISTRY_TABLE, shard).sort("seq")
