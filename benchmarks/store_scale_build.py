"""Build a synthetic store of N shards through the project's own write path (no video decoded).

    <work>/videos/dNNNNN/vNNNNNNNN.mp4   N*64 empty files (N*512 with STORE_SCALE_CLIPS_PER_SHARD=512): the corpus `run --input` discovers
    <work>/data/                          the data dir: store objects, curation.duckdb, dagster_home
    <work>/manifests/one-shard.jsonl      one shard's 64 files (the "1-shard manifest" run)
    <work>/build.json                     what was built, with timings and load

- registry: `discover()` over the folder, then `register()` (shard size 64) in batches of
  `REGISTER_BATCH` shards, as successive ingests would;
- the 14 shard tables: `ScoreStore.replace_shard` per (table, shard) with rows from
  store_scale_synthetic (the asset modules' schemas, `shard` + `code_version` columns as
  write_shard adds them, the footer's code version from `shard_code_versions`, so a no-op run
  finds nothing stale), on `--procs` processes, in chunks; between chunks the head node's
  compaction pass (curation/upkeep.py) runs as `run` does while shards finish, and the last
  `loose_tail` shards are written after the last pass (a store as a run leaves it: mostly
  segments, a few hundred loose objects per table);
- accelerated clips named by rows get an empty file (the training set checks they exist);
- the Dagster instance: the shards as dynamic partitions, added as the CLI adds them.

Resumable: each step skips what is already there (a shard whose 14 objects exist).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

REGISTER_BATCH = 1000  # shards per register() call


def build(work: Path, shards: int, procs: int = 2, log=print, store_url: str | None = None,
          compact_every: int = 1024, loose_tail: int = 128) -> dict:
    """`store_url`: an fsspec URL (s3://bucket/prefix) for the objects instead of <work>/data."""
    from curation_assets import settings
    from curation_assets.ingest.discover import discover
    from curation_assets.ingest.registry import REGISTRY_TABLE, register, registered_shards
    from curation_assets.store import ScoreStore
    from store_scale_synthetic import CLIPS_PER_SHARD, video_path

    work.mkdir(parents=True, exist_ok=True)
    data, videos = work / "data", work / "videos"
    data.mkdir(exist_ok=True)
    record = _read(work / "build.json")
    record.update(shards=shards, clips=shards * CLIPS_PER_SHARD, clips_per_shard=CLIPS_PER_SHARD,
                  load_start=os.getloadavg())
    steps = record.setdefault("steps", {})

    t0 = time.perf_counter()
    made = 0
    for i in range(shards * CLIPS_PER_SHARD):
        path = video_path(str(videos), i)
        if i % 1000 == 0:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            open(path, "wb").close()
            made += 1
    steps["video_files"] = {"made": made, "seconds": round(time.perf_counter() - t0, 1)}
    log(f"video files: {made} made in {steps['video_files']['seconds']} s")

    location = store_url or str(data)
    store = ScoreStore(data / settings.DB_FILENAME, location=location)
    have = set(registered_shards(store)) if REGISTRY_TABLE in store.tables() else set()
    if len(have) < shards:
        t0 = time.perf_counter()
        if shards * CLIPS_PER_SHARD <= 1_100_000:  # as a first ingest of the folder would (discover)
            entries = discover(videos)
            assert len(entries) == shards * CLIPS_PER_SHARD, len(entries)
        else:  # 10M InputEntry objects would not fit the head node's budget: the same entries, lazily
            entries = _LazyEntries(str(videos), shards * CLIPS_PER_SHARD)
        t_discover = time.perf_counter() - t0
        step = REGISTER_BATCH * CLIPS_PER_SHARD
        for start in range(len(have) * CLIPS_PER_SHARD, len(entries), step):
            tb = time.perf_counter()
            new = register(store, entries[start:start + step], CLIPS_PER_SHARD)
            _compact(store)  # the registering head node compacts (the sensor does after each tick)
            log(f"registered {len(new)} shards from {new[0] if new else '-'} in {time.perf_counter() - tb:.1f} s")
        steps["register"] = {"discover_s": round(t_discover, 1), "seconds": round(time.perf_counter() - t0, 1)}
    # the registry's own assignment must match the synthetic layout the score rows assume
    first = store.read_shard(REGISTRY_TABLE, "shard-00000").sort("seq")
    assert first["path"].to_list()[:2] == [video_path(str(videos), 0), video_path(str(videos), 1)], first["path"][:2]

    t0 = time.perf_counter()
    done_shards = _complete_shards(store)
    todo = [n for n in range(shards) if f"shard-{n:05d}" not in done_shards]
    log(f"score tables: {len(todo)} of {shards} shards to write on {procs} processes")
    compact_s, done = 0.0, 0
    tail = todo[-loose_tail:] if loose_tail and len(todo) > loose_tail else []
    body = todo[: len(todo) - len(tail)]
    with ProcessPoolExecutor(procs, mp_context=get_context("spawn")) as pool:
        for part, last_part in ((body, False), (tail, True)):
            for c0 in range(0, len(part), compact_every):
                chunk = part[c0:c0 + compact_every]
                pieces = [chunk[i::procs] for i in range(procs)]
                for written in pool.map(_write_shards, [(str(data), location, str(videos), c) for c in pieces if c]):
                    done += written
                if not last_part:  # the head node's pass, as `run` does while shards finish
                    tc = time.perf_counter()
                    _compact(store)
                    compact_s += time.perf_counter() - tc
                log(f"  {done}/{len(todo)} shards written ({time.perf_counter() - t0:.0f} s, compaction {compact_s:.0f} s)")
    if todo:
        steps["score_tables"] = {"shards": len(todo), "seconds": round(time.perf_counter() - t0, 1),
                                 "per_shard_ms": round(1000 * (time.perf_counter() - t0 - compact_s) / len(todo) * procs, 1),
                                 "procs": procs, "compaction_s": round(compact_s, 1), "loose_tail": len(tail)}

    t0 = time.perf_counter()
    _ensure_partitions(data, shards)
    steps["partitions"] = {"seconds": round(time.perf_counter() - t0, 1)}

    _write_manifest(work, videos)
    record["load_end"] = os.getloadavg()
    record["shard_objects"] = sum(len(store.shards(t)) for t in store.tables() if t != "shard_writes")
    if store.location.is_local:
        files = [f for f in (data / "tables").rglob("*") if f.is_file()]
        record["files"] = len(files)
        record["bytes"] = sum(f.stat().st_size for f in files)
    record["store"] = store.location.url
    (work / "build.json").write_text(json.dumps(record, indent=2))
    return record


class _LazyEntries:
    """discover()'s entries for the synthetic layout (sorted folders, sorted names), made per slice."""

    def __init__(self, root: str, n: int):
        self.root, self.n = root, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, part: slice):
        from curation_assets.ingest.discover import InputEntry
        from store_scale_synthetic import video_path

        return [InputEntry(video_path(self.root, i), None, self.root) for i in range(*part.indices(self.n))]


def _complete_shards(store) -> set[str]:
    """Shards written in every shard table (the build resumes after them)."""
    from store_scale_synthetic import SHARD_TABLES

    tables = store.tables()
    if not all(t in tables for t in SHARD_TABLES):
        return set()
    return set.intersection(*(set(store.shards(t)) for t in SHARD_TABLES))


def _compact(store) -> None:
    from curation_assets.curation.upkeep import upkeep

    upkeep(store, catalog=False)


def _write_shards(args) -> int:
    data, location, videos, numbers = args
    from curation_assets import settings
    from curation_assets.orchestration.recipe import shard_code_versions
    from curation_assets.store import ScoreStore
    from store_scale_synthetic import shard_tables

    store = ScoreStore(Path(data) / settings.DB_FILENAME, location=location)
    versions = shard_code_versions({}, "real")
    for number in numbers:
        shard = f"shard-{number:05d}"
        for table, rows in shard_tables(shard, number, videos, versions).items():
            store.replace_shard(table, shard, rows, code_version=versions[table])
            if table == "accelerated_videos":
                for key in rows["output_path"].drop_nulls().to_list():
                    store.location.write_bytes(key, b"")
    return len(numbers)


def _ensure_partitions(data: Path, shards: int) -> None:
    """As the CLI does it (shard_runner.ensure_partitions), in batches of 5,000."""
    from dagster import DagsterInstance

    from curation_assets.orchestration.instance import ensure_dagster_home
    from curation_assets.orchestration.partitions import shard_partitions

    os.environ.pop("DAGSTER_HOME", None)
    ensure_dagster_home(data)
    keys = [f"shard-{n:05d}" for n in range(shards)]
    with DagsterInstance.get() as instance:
        existing = set(instance.get_dynamic_partitions(shard_partitions.name))
        missing = [k for k in keys if k not in existing]
        for i in range(0, len(missing), 5000):
            instance.add_dynamic_partitions(shard_partitions.name, missing[i:i + 5000])


def _write_manifest(work: Path, videos: Path) -> None:
    from store_scale_synthetic import CLIPS_PER_SHARD, video_path

    folder = work / "manifests"
    folder.mkdir(exist_ok=True)
    lines = [json.dumps({"videos": [video_path(str(videos), i)], "text": None}) for i in range(CLIPS_PER_SHARD)]
    (folder / "one-shard.jsonl").write_text("\n".join(lines) + "\n")


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"started": dt.datetime.now().isoformat()}
