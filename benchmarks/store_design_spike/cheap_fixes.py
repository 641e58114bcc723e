"""Cheap fixes that apply to any store design, timed next to today's code in one process.

    python cheap_fixes.py --videos /work/scale/16000shards/videos [--dagster-home /work/scale/4000shards/data/dagster_home]

- discover(): today's os.walk + Path + one stat per file for the sidecar caption, against a
  variant that reads the sidecar from the directory listing it already has (same entries);
- the quadratic loop in cmd_run (set(paths) per registry row), per row, against one set;
- "which inputs are registered" as one polars join of 1M paths;
- failed_shard_reasons: one run-history query per shard (today) against one query for all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))


def discover_listing(root: Path):
    """Same entries as discover_folder, sidecar captions found in the listing (no stat per file)."""
    from curation_assets.ingest.discover import VIDEO_EXTENSIONS, InputEntry, _sidecar_caption

    root = root.resolve()
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        names = set(filenames)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            stem, dot, ext = name.rpartition(".")
            if dot and "." + ext.lower() in VIDEO_EXTENSIONS:
                path = f"{dirpath}/{name}"
                text = _sidecar_caption(Path(path)) if stem + ".txt" in names else None
                out.append(InputEntry(path, text, str(root)))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--videos", required=True)
    p.add_argument("--dagster-home", default=None)
    a = p.parse_args()
    from curation_assets.ingest.discover import discover

    res = {"load_before": os.getloadavg()[0]}
    t0 = time.perf_counter()
    today = discover(a.videos)
    res["discover_today_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = discover_listing(Path(a.videos))
    res["discover_listing_s"] = time.perf_counter() - t0
    assert fast == today, "the variant must find the same entries"
    res["files"] = len(today)

    import polars as pl

    paths = sorted({e.path for e in today})
    registry = pl.DataFrame({"path": paths, "shard": [f"shard-{i // 64:05d}" for i in range(len(paths))]})
    head = registry.head(200)
    t0 = time.perf_counter()
    {s for q, s in head.iter_rows() if q in set(paths)}
    per_row = (time.perf_counter() - t0) / head.height
    res["quadratic_per_row_ms"] = 1000 * per_row
    res["quadratic_extrapolated_s"] = per_row * registry.height
    t0 = time.perf_counter()
    wanted = set(paths)
    {s for q, s in registry.iter_rows() if q in wanted}
    res["set_once_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    registry.join(pl.DataFrame({"path": paths}), on="path", how="semi")["shard"].unique()
    res["polars_semi_join_s"] = time.perf_counter() - t0

    if a.dagster_home:
        os.environ["DAGSTER_HOME"] = a.dagster_home
        from dagster import DagsterInstance, RunsFilter

        from curation_assets.orchestration.run_history import failed_shards

        with DagsterInstance.get() as instance:
            shards = instance.get_dynamic_partitions("shards")
            t0 = time.perf_counter()
            failed_shards(instance, shards)
            res["failed_shards_per_shard_s"] = time.perf_counter() - t0
            res["failed_shards_n"] = len(shards)
            t0 = time.perf_counter()
            # one query: the latest runs that carry a partition tag, newest first; a shard's first hit is its latest
            latest = {}
            for rec in instance.get_run_records(RunsFilter(job_name="curate_shards"), limit=None):
                latest.setdefault(rec.dagster_run.tags.get("dagster/partition"), rec.dagster_run.status)
            res["failed_shards_one_query_s"] = time.perf_counter() - t0
    res["load_after"] = os.getloadavg()[0]
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}, indent=1))


if __name__ == "__main__":
    main()
