"""The object store under many writers, at fsspec locations, moved, migrated, and misconfigured."""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey

from curation_assets.frames.files import load_frames, save_frames
from curation_assets.ingest.discover import InputEntry
from curation_assets.ingest.registry import REGISTRY_TABLE, register, registered_shards, shard_members
from curation_assets.orchestration.assets.shard_io import shard_frames
from curation_assets.orchestration.staleness import shards_needing_run
from curation_assets.store import SHARD_WRITES, ScoreStore, StoreError, StoreLocation, StoreLocationError
from curation_assets.store.catalog import refresh_catalog

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TABLES = ("scores", "notes")


def _frame(shard: str, writer: int, attempt: int, n: int) -> pl.DataFrame:
    return pl.DataFrame({"video_id": [f"w{writer}-r{i}" for i in range(n)], "writer": [writer] * n,
                         "attempt": [attempt] * n, "score": [float(attempt)] * n})


def _check_objects(root: Path) -> int:
    """Every object parses whole and its footer's row count is its row count; no temp file left.
    Returns how many (table, shard) pairs have objects (a re-run is a new version of its shard's
    object: the superseded ones wait for the compactor's GC)."""
    objects = sorted((root / "tables").rglob("*"))
    assert not [p for p in objects if p.is_file() and not p.name.endswith(".parquet")], "temp files left behind"
    pairs = set()
    for path in objects:
        if path.is_file():
            table = pq.read_table(path)
            assert int(table.schema.metadata[b"curation:rows"]) == table.num_rows, path
            pairs.add((path.parent.name, table.schema.metadata[b"curation:shard"]))
    return len(pairs)


# --------------------------------------------------------------------------- many writers


N_WRITES = 12


def _writer(root: str, shard: str, writer: int, rows: int, barrier, results, errors) -> None:
    try:
        store = ScoreStore(Path(root) / "curation.duckdb", location=root)
        barrier.wait(timeout=120)
        for attempt in range(N_WRITES):
            before = time.monotonic_ns()  # one system-wide clock for all processes
            for table in TABLES:
                store.replace_shard(table, shard, _frame(shard, writer, attempt, rows), code_version=f"w{writer}-a{attempt}")
            results.put((writer, attempt, before, time.monotonic_ns()))
    except BaseException:
        errors.put(f"writer {writer}: {traceback.format_exc()}")
        raise


def _reader(root: str, shard: str, stop, seen, errors) -> None:
    """Reads the contested shard while it is rewritten: each read must be one whole version."""
    try:
        store = ScoreStore(Path(root) / "curation.duckdb", location=root)
        reads = 0
        while not stop.is_set():
            try:
                frame = store.read_shard("scores", shard)
            except StoreError:
                continue  # not written yet
            versions = set(zip(frame["writer"].to_list(), frame["attempt"].to_list()))
            if not versions and not reads:
                continue  # read before the first publish: the table existed, this shard not yet
            if len(versions) != 1 or frame.height != {0: 5, 1: 7}[next(iter(versions))[0]]:
                errors.put(f"reader saw a mixed or partial shard: {frame.height} rows of {sorted(versions)}")
                return
            reads += 1
        seen.put(reads)
    except BaseException:
        errors.put(f"reader: {traceback.format_exc()}")
        raise


def _run(procs, timeout=240):
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=timeout)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
    assert not alive, "a process hung"


def _drain(queue) -> list:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def test_four_processes_write_different_shards_of_the_same_tables(tmp_path):
    ctx = mp.get_context("spawn")
    barrier, results, errors = ctx.Barrier(4), ctx.Queue(), ctx.Queue()
    rows = {0: 3, 1: 4, 2: 5, 3: 6}
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), f"shard-{w:05d}", w, rows[w], barrier, results, errors))
             for w in range(4)]
    _run(procs)
    assert not _drain(errors)
    assert [p.exitcode for p in procs] == [0] * 4

    store = ScoreStore(tmp_path / "curation.duckdb", location=tmp_path)
    assert _check_objects(tmp_path) == 4 * len(TABLES)
    for table in TABLES:  # no lost rows: every shard holds its writer's last version, whole
        got = store.query(f"select shard, writer, attempt, count(*) n from {table} group by all order by shard").rows()
        assert got == [(f"shard-{w:05d}", w, N_WRITES - 1, rows[w]) for w in range(4)]
    writes = store.query(f"select asset, shard, rows, code_version from {SHARD_WRITES} order by asset, shard").rows()
    assert writes == [(t, f"shard-{w:05d}", rows[w], f"w{w}-a{N_WRITES - 1}") for t in sorted(TABLES) for w in range(4)]
    # the catalog file sees the same, through its views (made by a head-node command's refresh)
    refresh_catalog(store)
    con = duckdb.connect(str(tmp_path / "curation.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from scores").fetchone()[0] == sum(rows.values())
        assert con.execute("select count(*) from shard_writes").fetchone()[0] == 4 * len(TABLES)
    finally:
        con.close()


def test_two_processes_write_the_same_shard_last_complete_write_wins(tmp_path):
    ctx = mp.get_context("spawn")
    barrier, results, errors, seen, stop = ctx.Barrier(2), ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Event()
    shard = "shard-00007"
    reader = ctx.Process(target=_reader, args=(str(tmp_path), shard, stop, seen, errors))
    reader.start()
    writers = [ctx.Process(target=_writer, args=(str(tmp_path), shard, w, {0: 5, 1: 7}[w], barrier, results, errors))
               for w in range(2)]
    _run(writers)
    stop.set()
    reader.join(timeout=60)
    assert not _drain(errors)
    assert [p.exitcode for p in writers] == [0, 0] and reader.exitcode == 0
    assert _drain(seen)[0] > 0  # the reader did read while the writers wrote

    assert _check_objects(tmp_path) == len(TABLES)  # one object per table: one complete version
    store = ScoreStore(tmp_path / "curation.duckdb", location=tmp_path)
    final = store.read_shard("scores", shard)
    versions = set(zip(final["writer"].to_list(), final["attempt"].to_list()))
    assert len(versions) == 1
    writer, attempt = versions.pop()
    assert attempt == N_WRITES - 1 and final.height == {0: 5, 1: 7}[writer]
    last = {w: (before, after) for w, a, before, after in _drain(results) if a == N_WRITES - 1}
    other = 1 - writer
    # the winner's last publish was not entirely before the loser's last one began
    assert last[writer][1] >= last[other][0]
    bookkeeping = store.query(f"select rows, code_version from {SHARD_WRITES} where asset = 'scores'").rows()
    assert bookkeeping == [(final.height, f"w{writer}-a{N_WRITES - 1}")]  # describes exactly the data there


def test_rerun_replaces_the_shard_object(tmp_path):
    store = ScoreStore(tmp_path / "curation.duckdb")
    store.replace_shard("scores", "shard-00000", _frame("shard-00000", 0, 0, 4), code_version="v1")
    store.replace_shard("scores", "shard-00000", _frame("shard-00000", 0, 1, 2), code_version="v2")
    assert store.shards("scores") == ["shard-00000"]
    assert store.query("select attempt, count(*) from scores group by all").rows() == [(1, 2)]
    assert store.query(f"select rows, code_version from {SHARD_WRITES}").rows() == [(2, "v2")]


# --------------------------------------------------------------------------- fsspec locations


@pytest.mark.parametrize("url", ["memory://curation-test-store", "file://{tmp}/store"])
def test_fsspec_locations(tmp_path, url):
    url = url.format(tmp=tmp_path)
    if url.startswith("file://"):
        (tmp_path / "store").mkdir()
    location = StoreLocation(url)
    location.check()
    store = ScoreStore(tmp_path / "catalog" / "curation.duckdb", location=url)
    assert register(store, [InputEntry(f"/v/{n}.mp4", n, "/v") for n in "abc"], shard_size=2) == ["shard-00000", "shard-00001"]
    assert registered_shards(store) == ["shard-00000", "shard-00001"]
    assert shard_members(store, "shard-00001")["path"].to_list() == ["/v/c.mp4"]
    store.replace_shard("scores", "shard-00000", _frame("shard-00000", 0, 0, 2), code_version="v1")
    assert store.read_shard("scores", "shard-00000").height == 2
    assert store.query(f"select asset, shard, rows from {SHARD_WRITES} where asset = 'scores'").rows() == [
        ("scores", "shard-00000", 2)]

    keys = save_frames(location, "abcdef", [0, 5], [np.full((8, 8, 3), 40, np.uint8), np.full((8, 8, 3), 200, np.uint8)])
    assert keys == ["frames/ab/abcdef/0000000.png", "frames/ab/abcdef/0000005.png"]
    frames = load_frames(keys, location)
    assert [int(f.mean()) for f in frames] == [40, 200]

    tables = refresh_catalog(store)  # local: views; remote: tables refreshed through fsspec
    assert {"scores", REGISTRY_TABLE, SHARD_WRITES} <= set(tables)
    con = duckdb.connect(str(tmp_path / "catalog" / "curation.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from video_registry").fetchone()[0] == 3
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables").fetchall())
        assert kinds["scores"] == ("VIEW" if location.is_local else "BASE TABLE")
    finally:
        con.close()
    if url.startswith("memory://"):
        location.fs.rm(location.root, recursive=True)


# --------------------------------------------------------------------------- relative paths


def test_moved_data_dir_still_queries_and_reads_frames(tmp_path):
    data = tmp_path / "data"
    store = ScoreStore(data / "curation.duckdb")
    keys = save_frames(data, "cafe01", [0, 9], [np.full((6, 6, 3), 10, np.uint8), np.full((6, 6, 3), 90, np.uint8)])
    store.replace_shard("sampled_frames", "shard-00000", pl.DataFrame(
        {"video_id": ["cafe01"], "frame_indices": [[0, 9]], "frame_paths": [keys], "error": [None]},
        schema_overrides={"error": pl.Utf8}))
    assert store.read_shard("sampled_frames", "shard-00000")["frame_paths"].to_list() == [keys]  # relative keys

    moved = tmp_path / "elsewhere" / "data"
    moved.parent.mkdir()
    shutil.move(str(data), str(moved))
    store = ScoreStore(moved / "curation.duckdb")
    row = shard_frames(store, "shard-00000")["cafe01"]
    assert row["frame_paths"][0].startswith(str(moved))
    assert [int(f.mean()) for f in load_frames(row["frame_paths"])] == [10, 90]
    assert store.query("select count(*) n from sampled_frames")["n"][0] == 1
    refresh_catalog(store)  # the catalog's views follow the store (every CLI command does this)
    con = duckdb.connect(str(moved / "curation.duckdb"), read_only=True)
    try:
        assert con.execute("select video_id from sampled_frames").fetchall() == [("cafe01",)]
    finally:
        con.close()


# --------------------------------------------------------------------------- migration


def _legacy_data_dir(data: Path) -> dict:
    """A data dir exactly as the DuckDB-table version wrote it (its own store code)."""
    import legacy_duckdb_store as legacy

    store = legacy.ScoreStore(data / "curation.duckdb")
    entries = [InputEntry(f"/videos/{n}.mp4", f"caption {n}", "/videos") for n in "abcde"]
    assert legacy.register(store, entries, shard_size=2) == ["shard-00000", "shard-00001", "shard-00002"]
    abs_keys = [str(data / k) for k in save_frames(data, "beef01", [0, 4], [np.full((6, 6, 3), 30, np.uint8)] * 2)]
    assert all(Path(k).is_absolute() for k in abs_keys)
    (data / "accelerated" / "be").mkdir(parents=True)
    clip = data / "accelerated" / "be" / "beef01_x2.000.mp4"
    clip.write_bytes(b"not really a video, only its path matters here")
    for shard in ("shard-00000", "shard-00001"):
        store.replace_shard("motion", shard, pl.DataFrame({"video_id": [f"{shard}-v"], "motion_score": [1.5],
                                                            "code_version": ["m1"]}), code_version="m1")
    store.replace_shard("motion", "shard-00002", pl.DataFrame(schema={"video_id": pl.Utf8, "motion_score": pl.Float64,
                                                                      "code_version": pl.Utf8}), code_version="m1")
    store.replace_shard("sampled_frames", "shard-00000", pl.DataFrame(
        {"video_id": ["beef01"], "frame_paths": [abs_keys], "code_version": ["f1"]}), code_version="f1")
    store.replace_shard("accelerated_videos", "shard-00000", pl.DataFrame(
        {"video_id": ["beef01"], "output_path": [str(clip)], "code_version": ["a1"]}), code_version="a1")
    with store.transaction() as con:
        con.execute("create table lora_training_set as select 1 as rank, 'beef01' as video_id, '16x256x256' as preset")
        con.execute("create table my_notes as select 'kept by the user' as note")
    before = store.query(f"select * from {SHARD_WRITES} order by asset, shard")
    return {"writes": before, "clip": clip}


def test_migrate_store_converts_a_data_dir_of_the_old_format(tmp_path):
    data = tmp_path / "data"
    legacy = _legacy_data_dir(data)
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "dagster_home"))
    env.pop("CURATION_STORE", None)

    refused = subprocess.run([str(BIN / "curation-assets"), "status", "--data-dir", str(data)], cwd=REPO_ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "migrate-store" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    done = subprocess.run([str(BIN / "curation-assets"), "migrate-store", "--data-dir", str(data)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "motion: 2 rows in 3 objects" in done.stdout and "my_notes" in done.stdout
    assert (data / "curation.duckdb.pre-migration").is_file()

    moved = tmp_path / "moved" / "data"  # and it survives a move: paths became relative
    moved.parent.mkdir()
    shutil.move(str(data), str(moved))
    store = ScoreStore(moved / "curation.duckdb")
    refresh_catalog(store)
    after = store.query(f"select * from {SHARD_WRITES} where asset not in ('{REGISTRY_TABLE}', 'lora_training_set') "
                        "order by asset, shard")
    old = legacy["writes"]
    assert after.select("asset", "shard", "rows", "code_version").rows() == old.select(
        "asset", "shard", "rows", "code_version").rows()  # bookkeeping kept, empty shard-00002 included
    assert after["written_at"].to_list() == old["written_at"].to_list()
    # nothing re-scored: with the same code versions no shard needs a run
    assert shards_needing_run(store, {"motion": "m1"}) == {}
    assert registered_shards(store) == ["shard-00000", "shard-00001", "shard-00002"]
    row = store.read_shard("sampled_frames", "shard-00000").row(0, named=True)
    assert row["frame_paths"] == ["frames/be/beef01/0000000.png", "frames/be/beef01/0000004.png"]
    assert [int(f.mean()) for f in load_frames(shard_frames(store, "shard-00000")["beef01"]["frame_paths"])] == [30, 30]
    acc = store.read_shard("accelerated_videos", "shard-00000")["output_path"].to_list()
    assert acc == ["accelerated/be/beef01_x2.000.mp4"] and (moved / acc[0]).is_file()
    con = duckdb.connect(str(moved / "curation.duckdb"), read_only=True)
    try:
        assert con.execute("select preset from lora_training_set").fetchall() == [("16x256x256",)]
        assert con.execute("select note from my_notes").fetchall() == [("kept by the user",)]  # user tables stay
        assert con.execute("select count(*) from video_registry").fetchone()[0] == 5
    finally:
        con.close()

    again = subprocess.run([str(BIN / "curation-assets"), "migrate-store", "--data-dir", str(moved)], cwd=REPO_ROOT,
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "nothing to migrate" in again.stdout


# --------------------------------------------------------------------------- bad store location


@pytest.mark.parametrize("where, expected", [
    ("{tmp}/does/not/exist", "does not exist"),
    ("{tmp}/a_file", "is not a folder"),
    ("/proc", "is not writable"),
    ("nosuchprotocol://bucket/prefix", "cannot be reached"),
])
def test_bad_store_location_fails_at_start_up_in_one_line(tmp_path, where, expected):
    (tmp_path / "a_file").write_text("x")
    where = where.format(tmp=tmp_path)
    with pytest.raises(StoreLocationError, match=expected):
        StoreLocation(where).check()
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "dagster_home"), CURATION_STORE=where)
    for args, setting in ((["status", "--data-dir", str(tmp_path / "data")], "CURATION_STORE"),
                          (["run", "--input", str(tmp_path), "--data-dir", str(tmp_path / "data"), "--store", where], "--store")):
        out = subprocess.run([str(BIN / "curation-assets"), *args], cwd=REPO_ROOT, env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 2, out.stdout + out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and setting in lines[0] and expected in lines[0], lines
    assert not (tmp_path / "data" / "tables").exists()  # nothing half-written


# --------------------------------------------------------------------------- a shard run at a URL location


def test_shard_run_writes_objects_and_frames_at_a_url_location(demo_copy, tmp_path, monkeypatch):
    """The graph with CURATION_STORE=file://...: scores, frames and bookkeeping land at the
    location, not in the data dir; the catalog in the data dir shows them."""
    from dagster import instance_for_test

    from curation_assets.ingest.discover import discover
    from curation_assets.orchestration.definitions import build_definitions
    from curation_assets.orchestration.jobs import CURATE_SHARDS_JOB
    from curation_assets.orchestration.partitions import shard_partitions

    shared = tmp_path / "shared_store"
    shared.mkdir()
    monkeypatch.setenv("CURATION_STORE", f"file://{shared}")
    data = tmp_path / "data"
    store = ScoreStore(data / "curation.duckdb")
    assert store.location.root == str(shared)
    register(store, [e for n in ("good_pan_right.mp4", "zero_byte.mp4") for e in discover(demo_copy / n)], shard_size=10)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, ["shard-00000"])
        job = build_definitions(recipe={}, data_dir=str(data)).resolve_job_def(CURATE_SHARDS_JOB)
        result = job.execute_in_process(partition_key="shard-00000", instance=instance,
                                        asset_selection=[AssetKey(a) for a in ("raw_videos", "motion", "sampled_frames")])
    assert result.success
    assert not (data / "tables").exists() and not (data / "frames").exists()
    assert {"raw_videos", "motion", "sampled_frames", REGISTRY_TABLE} <= {p.name for p in (shared / "tables").iterdir()}
    frames = store.read_shard("sampled_frames", "shard-00000").filter(pl.col("error").is_null())
    keys = frames["frame_paths"].to_list()[0]
    assert keys and all(k.startswith("frames/") and (shared / k).is_file() for k in keys)
    assert store.query("select count(*) n from raw_videos")["n"][0] == 2
    writes = dict(store.query(f"select asset, rows from {SHARD_WRITES}").rows())
    assert writes["raw_videos"] == 2 and writes["motion"] == 1  # the zero-byte file is not scored
    refresh_catalog(store)
    con = duckdb.connect(str(data / "curation.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from raw_videos").fetchone()[0] == 2
    finally:
        con.close()
