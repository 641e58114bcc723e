#!/usr/bin/env python
"""Usage: python benchmarks/store_scale_loose_tail.py /work/scale/v2-1000/data 128

Re-publish the last N shards of every shard table as new loose versions (a fully compacted
store -> the steady state a run leaves: segments + the shards written since the last pass)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from curation_assets.store import ScoreStore  # noqa: E402

store = ScoreStore(sys.argv[1] + "/curation.duckdb")
n = int(sys.argv[2])
shards = sorted(store.shards("video_registry"))[-n:]
for table in sorted(store.tables() - {"shard_writes", "video_registry"}):
    w = store.winners(table)
    if "shard" not in (store._reference_schema(table).names):
        continue
    cv = dict(zip(w["shard"].to_list(), w["code_version"].to_list()))
    for s in shards:
        if s in cv:
            store.publish_shard(table, s, store.read_shard(table, s), code_version=cv[s])
print("republished", len(shards), "shards")
