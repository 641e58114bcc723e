"""The head node's store upkeep: a compaction pass with what this project keeps beside the
segments, then the catalog brought up to date. Run by `run` (while shards finish and at its
end), `status`, the sensor and `curation-assets compact`; never by a shard's steps (writers on
other machines only publish their own shards).

What the tables keep beside their segments (store/compaction.py `TableExtras`):
- curated_videos: the funnel's per-shard counts (curation/funnel.py `SUMMARY`), so `status` and
  the run's funnel count the whole store from the index instead of every row;
- raw_videos: the content-hash index (store/id_index.py) the duplicate lookup reads.
"""

from __future__ import annotations

from typing import Callable

import polars as pl

from curation_assets.curation.funnel import CURATED_TABLE, SUMMARY
from curation_assets.store import ScoreStore
from curation_assets.store.compaction import CompactionReport, TableExtras, compact_store
from curation_assets.store.id_index import IdIndexSpec, lookup

RAW_VIDEOS = "raw_videos"
# a file counts as registered content once it probed fine (a failed probe has no hash)
RAW_VIDEOS_IDS = IdIndexSpec(key="video_id", columns=("seq", "path"), keep=pl.col("error").is_null())


def table_extras() -> dict[str, TableExtras]:
    return {CURATED_TABLE: TableExtras(summarizer=SUMMARY), RAW_VIDEOS: TableExtras(id_index=RAW_VIDEOS_IDS)}


def upkeep(store: ScoreStore, *, force: bool = False, catalog: bool = True, tables: list[str] | None = None,
           report: Callable[[str], None] | None = None, repack: bool = False) -> list[CompactionReport]:
    """Compact what is due (everything with `force`), then refresh the catalog. `repack`: also
    rewrite the segments of another row-group layout and the id index's runs written before its
    hash column, one per table a pass, pass after pass until none is left (the reports of every
    pass)."""
    reports = last = compact_store(store, tables, force=force, extras=table_extras(), report=report, repack=repack)
    while repack and any(r.merged or r.rehashed for r in last):  # [] when another compactor holds the lock
        last = compact_store(store, tables, extras=table_extras(), report=report, repack=True)
        reports = reports + last
    if catalog:
        from curation_assets.store.catalog import refresh_catalog

        refresh_catalog(store)
    return reports


def known_primaries(store: ScoreStore, shard: str, ids: list[str]) -> dict[str, tuple[int, str]]:
    """video_id -> (seq, path) of its earliest copy recorded in another shard."""
    found = lookup(store, RAW_VIDEOS, RAW_VIDEOS_IDS, ids, exclude_shard=shard)
    if not found.height:
        return {}
    first = found.sort("seq", "path").group_by("video_id", maintain_order=True).first()
    return {vid: (int(seq), path) for vid, seq, path in first.select("video_id", "seq", "path").iter_rows()}
