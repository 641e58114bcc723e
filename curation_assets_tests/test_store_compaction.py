"""Versioned objects, compaction, GC and the shard index (store/compaction.py), on a folder and on
moto's S3 server (started once for this module): what readers see while writers re-run shards
and the compactor merges and deletes, objects of earlier code, unreadable objects, clock skew."""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing as mp
import os
import time
import traceback
from pathlib import Path

import duckdb
import polars as pl
import pytest

from curation_assets.store import SHARD_WRITES, ScoreStore, UnreadableObject
from curation_assets.store import layout
from curation_assets.store.catalog import refresh_catalog
from curation_assets.store.compaction import compact_store, compact_table
from curation_assets.store.score_store import parquet_bytes

BUCKET = "curation-compaction-test"


def _rows(shard: str, writer: int, attempt: int, n: int) -> pl.DataFrame:
    return pl.DataFrame({"video_id": [f"{shard}-v{i}" for i in range(n)], "writer": [writer] * n,
                         "attempt": [attempt] * n, "score": [float(attempt)] * n})


def _versions(frame: pl.DataFrame) -> set:
    return set(zip(frame["writer"].to_list(), frame["attempt"].to_list()))


# --------------------------------------------------------------------------- the race

SHARDS, HOT = [f"shard-{i:05d}" for i in range(6)], "shard-00000"
WRITES = 14


def _writer(root: str, db: str, writer: int, barrier, results, errors) -> None:
    try:
        store = ScoreStore(db, location=root)
        barrier.wait(timeout=120)
        for attempt in range(WRITES):
            # every writer re-runs the hot shard, and its own shard; sizes differ per write
            for shard in (HOT, SHARDS[1 + writer % (len(SHARDS) - 1)]):
                n = 1 + (writer + attempt) % 4
                start = time.monotonic_ns()  # one system-wide clock for all processes
                done = store.publish_shard("scores", shard, _rows(shard, writer, attempt, n), code_version=f"w{writer}")
                results.put((shard, writer, attempt, n, start, time.monotonic_ns(), done.version))
    except BaseException:
        errors.put(f"writer {writer}: {traceback.format_exc()}")
        raise


def _compactor(root: str, db: str, stop, passes, errors) -> None:
    try:
        store = ScoreStore(db, location=root)
        n = deleted = 0
        while not stop.is_set():
            for report in compact_store(store, ["scores"], force=True, min_loose_objects=1, grace_s=0.5):
                deleted += len(report.deleted)
            n += 1
            time.sleep(0.05)
        passes.put((n, deleted))
    except BaseException:
        errors.put(f"compactor: {traceback.format_exc()}")
        raise


def _reader(root: str, db: str, stop, reads, errors) -> None:
    """Every read shows each shard as exactly one whole write."""
    try:
        store = ScoreStore(db, location=root)
        n = 0
        while not stop.is_set():
            if "scores" not in store.tables():  # before the first write
                time.sleep(0.05)
                continue
            frame = store.query("select shard, writer, attempt, count(*) as n from scores group by all")
            per = frame.group_by("shard").len()
            if per["len"].max() not in (None, 1):
                errors.put(f"a shard showed rows of several writes: {frame.sort('shard').rows()}")
                return
            hot = store.read_shard("scores", HOT)
            if hot.height and (len(_versions(hot)) != 1 or hot.height != 1 + sum(next(iter(_versions(hot)))) % 4):
                errors.put(f"hot shard read mixed or partial: {hot.rows()}")
                return
            n += 1
        reads.put(n)
    except BaseException:
        errors.put(f"reader: {traceback.format_exc()}")
        raise


def _drain(queue) -> list:
    out = []
    while True:
        try:
            out.append(queue.get(timeout=0.2))
        except Exception:
            return out


def _race(root: str, db: str) -> None:
    ctx = mp.get_context("spawn")
    writers = 3
    barrier, results, errors = ctx.Barrier(writers), ctx.Queue(), ctx.Queue()
    stop, passes, reads = ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(root, db, w, barrier, results, errors)) for w in range(writers)]
    side = [ctx.Process(target=_compactor, args=(root, db, stop, passes, errors)),
            ctx.Process(target=_reader, args=(root, db, stop, reads, errors))]
    for p in side + procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    time.sleep(1.0)  # the compactor and the reader go on a little after the last write
    stop.set()
    for p in side:
        p.join(timeout=120)
    for p in procs + side:
        if p.is_alive():
            p.kill()
    assert not _drain(errors)
    assert [p.exitcode for p in procs + side] == [0] * (writers + 2)
    (compactions, deleted), = _drain(passes)
    assert compactions > 1 and deleted > 0 and _drain(reads)[0] > 0  # it merged and deleted while others worked
    writes = _drain(results)
    last = {}  # per shard, the write with the newest version: the one that must win
    for shard, writer, attempt, n, start, end, version in writes:
        if shard not in last or version > last[shard][3]:
            last[shard] = (writer, attempt, n, version, end)
    for shard, (_, _, _, _, end) in last.items():
        # the newest version is the last write in time too: no write of the shard began after it ended
        assert not [w for w in writes if w[0] == shard and w[4] > end], shard
    compact_store(ScoreStore(db, location=root), ["scores"], force=True, min_loose_objects=1, grace_s=0.5)
    store = ScoreStore(db, location=root)
    for shard, (writer, attempt, n, _, _) in last.items():  # every shard is its last write, whole
        got = store.read_shard("scores", shard)
        assert _versions(got) == {(writer, attempt)} and got.height == n, (shard, got.rows())
    totals = store.query("select shard, count(*) n from scores group by shard order by shard").rows()
    assert totals == sorted((s, v[2]) for s, v in last.items())  # nothing lost, nothing twice
    writes = dict(store.query(f"select shard, code_version from {SHARD_WRITES}").rows())
    assert writes == {s: f"w{v[0]}" for s, v in last.items()}


@pytest.mark.slow
def test_writers_compactor_and_reader_race_on_a_folder(tmp_path):
    _race(str(tmp_path), str(tmp_path / "curation.duckdb"))
    assert not list((tmp_path / "tables").rglob(".*.tmp"))


@pytest.fixture
def s3_url(s3_endpoint, tmp_path, monkeypatch):
    import fsspec

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_endpoint,
                        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(tmp_path / "none"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(name, value)  # the spawned writers inherit these
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    fs = fsspec.filesystem("s3", skip_instance_cache=True, use_listings_cache=False)
    if fs.exists(BUCKET):
        fs.rm(BUCKET, recursive=True)
    fs.mkdir(BUCKET)
    return f"s3://{BUCKET}/store"


@pytest.mark.slow
def test_writers_compactor_and_reader_race_on_s3(s3_url, tmp_path):
    _race(s3_url, str(tmp_path / "curation.duckdb"))


# --------------------------------------------------------------------------- versions and winners


@pytest.fixture
def store(tmp_path) -> ScoreStore:
    return ScoreStore(tmp_path / "curation.duckdb")


def _compact(store, grace_s=3600.0, now=None, table="scores"):
    return compact_table(store, table, force=True, min_loose_objects=1, grace_s=grace_s, now=now)


def test_rerun_to_zero_rows_hides_the_old_rows_loose_and_compacted(store):
    for shard in ("a", "b"):
        store.replace_shard("scores", shard, _rows(shard, 0, 0, 3))
    empty = _rows("a", 0, 1, 0)
    store.replace_shard("scores", "a", empty)
    assert store.read_shard("scores", "a").height == 0
    assert store.query("select shard, count(*) from scores group by all").rows() == [("b", 3)]
    _compact(store)
    assert store.query("select shard, count(*) from scores group by all").rows() == [("b", 3)]
    store.replace_shard("scores", "b", _rows("b", 0, 1, 0))  # compacted, then re-run to nothing
    assert store.query("select count(*) from scores").rows() == [(0,)]
    assert dict(store.query(f"select shard, rows from {SHARD_WRITES}").rows()) == {"a": 0, "b": 0}
    refresh_catalog(store)
    con = duckdb.connect(str(store.db_path), read_only=True)
    try:
        assert con.execute("select count(*) from scores").fetchone() == (0,)
        assert dict(con.execute("select shard, rows from shard_writes").fetchall()) == {"a": 0, "b": 0}
    finally:
        con.close()


def _legacy_object(store, table: str, shard: str, frame: pl.DataFrame, code_version: str) -> None:
    """An object exactly as the code before versions wrote it: `<shard>.parquet`."""
    meta = {"table": table, "shard": shard, "rows": str(frame.height), "code_version": code_version,
            "written_at": "2026-11-01T10:00:00"}
    store.location.write_bytes(f"tables/{table}/{layout.legacy_name(shard)}",
                               parquet_bytes(frame.with_columns(pl.lit(shard).alias("shard")), meta))


def test_objects_of_earlier_code_read_as_the_oldest_version(store):
    _legacy_object(store, "scores", "old", _rows("old", 9, 0, 2), "c0")
    _legacy_object(store, "scores", "both", _rows("both", 9, 0, 2), "c0")
    assert store.read_shard("scores", "old").height == 2
    writes = store.shard_writes(["scores"]).sort("shard")
    assert writes.select("shard", "rows", "code_version").rows() == [("both", 2, "c0"), ("old", 2, "c0")]
    assert writes["written_at"].to_list()[0] == dt.datetime(2026, 11, 1, 10)
    store.replace_shard("scores", "both", _rows("both", 1, 1, 1), code_version="c1")  # any new write wins
    assert _versions(store.read_shard("scores", "both")) == {(1, 1)}
    _compact(store)  # absorbed into a segment with their version ""
    assert store.query("select shard, writer, count(*) from scores group by all order by 1").rows() == [
        ("both", 1, 1), ("old", 9, 2)]
    assert dict(store.query(f"select shard, code_version from {SHARD_WRITES}").rows()) == {"both": "c1", "old": "c0"}


def test_a_writer_whose_clock_lags_still_wins(store):
    store.replace_shard("scores", "s", _rows("s", 0, 0, 2))
    past = dt.datetime(2020, 1, 1)  # a machine whose clock is years behind re-runs the shard
    store.publish_shard("scores", "s", _rows("s", 1, 1, 3)).version
    store.publish("scores", "s", _rows("s", 2, 2, 1).with_columns(pl.lit("s").alias("shard")), written_at=past)
    assert _versions(store.read_shard("scores", "s")) == {(2, 2)}
    _compact(store)  # its newest version now only in the index: a lagging writer still sees it
    store.publish("scores", "s", _rows("s", 3, 3, 2).with_columns(pl.lit("s").alias("shard")), written_at=past)
    assert _versions(store.read_shard("scores", "s")) == {(3, 3)}


def test_gc_never_deletes_a_winner_or_a_file_younger_than_the_grace(store, tmp_path):
    folder = tmp_path / "tables" / "scores"
    for attempt in range(3):
        store.replace_shard("scores", "s", _rows("s", 0, attempt, 2))
    store.replace_shard("scores", "t", _rows("t", 0, 0, 1))
    before = {p.name for p in folder.iterdir() if p.is_file()}
    report = _compact(store, grace_s=3600)  # absorbs; every replaced file is younger than the grace
    assert report.absorbed == 2 and report.deleted == []
    assert before <= {p.name for p in folder.iterdir()}
    # an hour later (the pass's clock): superseded and absorbed loose objects go, never the segment that wins
    report = _compact(store, grace_s=3600, now=time.time() + 3700)
    assert set(report.deleted) == before
    left = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert len(left) == 1 and left[0].startswith("_seg-")
    assert store.query("select shard, attempt, count(*) from scores group by all order by 1").rows() == [
        ("s", 2, 2), ("t", 0, 1)]
    # a re-run after that: the segment still holds t, and stays (it wins t) while s moves on
    store.replace_shard("scores", "s", _rows("s", 0, 3, 1))
    report = _compact(store, grace_s=3600, now=time.time() + 7400)
    assert not any(n.startswith("_seg-") for n in report.deleted) or report.merged
    assert store.query("select shard, attempt, count(*) from scores group by all order by 1").rows() == [
        ("s", 3, 1), ("t", 0, 1)]


def test_a_read_that_listed_before_a_gc_lists_again(store, monkeypatch):
    """The project's reads name files explicitly; a file the GC removed after the listing makes
    the read list again once and answer from what is there now."""
    store.replace_shard("scores", "s", _rows("s", 0, 0, 2))
    stale_state = store.state("scores")  # what a reader listed
    store.replace_shard("scores", "s", _rows("s", 0, 1, 3))
    _compact(store, grace_s=0, now=time.time() + 1)
    _compact(store, grace_s=0, now=time.time() + 2)  # the first object is deleted now
    real = ScoreStore.state
    calls = {"n": 0}

    def listed_before(self, table, detail=False):
        calls["n"] += 1
        return stale_state if calls["n"] == 1 else real(self, table, detail)

    monkeypatch.setattr(ScoreStore, "state", listed_before)
    assert store.query("select attempt, count(*) from scores group by all").rows() == [(1, 3)]
    assert calls["n"] >= 2


def test_an_unreadable_object_is_named_and_the_rest_is_read(store, tmp_path, caplog):
    for shard in ("a", "b", "c"):
        store.replace_shard("scores", shard, _rows(shard, 0, 0, 2))
    _compact(store)  # a, b, c in a segment
    store.replace_shard("scores", "d", _rows("d", 0, 0, 2))
    loose = next(p for p in (tmp_path / "tables" / "scores").iterdir() if p.name.startswith("d@"))
    loose.write_bytes(loose.read_bytes()[:40])  # a truncated upload
    with caplog.at_level(logging.WARNING):
        assert store.query("select count(*) from scores").rows() == [(6,)]
    assert loose.name in caplog.text
    with pytest.raises(UnreadableObject, match=loose.name):
        store.read_shard("scores", "d")
    bad = store.unreadable(["scores"])
    assert [(u.table, u.shards) for u in bad] == [("scores", ("d",))] and loose.name in bad[0].key
    report = _compact(store)  # skipped, recorded; the rest compacts
    assert loose.name in report.unreadable and report.absorbed == 0
    # a truncated segment: its shards are named unreadable, the loose shards still read
    winners = store.winners("scores")
    segment = tmp_path / "tables" / "scores" / winners.filter(pl.col("shard") == "a")["file"][0]
    segment.write_bytes(segment.read_bytes()[:100])
    store.replace_shard("scores", "d", _rows("d", 0, 1, 2))  # the re-run fixes d
    with caplog.at_level(logging.WARNING):
        assert store.query("select shard, count(*) from scores group by all").rows() == [("d", 2)]
    assert segment.name in caplog.text
    assert {u.shards for u in store.unreadable(["scores"])} == {("a", "b", "c")}


def test_status_lists_unreadable_shards(tmp_path, monkeypatch, capsys):
    from curation_assets.cli import main
    from curation_assets.ingest.discover import InputEntry
    from curation_assets.ingest.registry import register

    data = tmp_path / "data"
    store = ScoreStore(data / "curation.duckdb")
    register(store, [InputEntry(f"/videos/{n}.mp4", None, "/videos") for n in "abc"], shard_size=2)
    store.replace_shard("motion", "shard-00001", pl.DataFrame({"video_id": ["x"], "motion_score": [1.0]}))
    bad = next((data / "tables" / "motion").iterdir())
    bad.write_bytes(b"PAR1 not really")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(["status", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "1 shards unreadable" in out and f"motion shard-00001: {bad}" in out, out
    assert "  shard-00001: " in out  # and it needs a run


def test_compacted_store_reads_like_the_loose_one(store, tmp_path):
    """Rows, shard_writes, the funnel's summaries and the duplicate lookup agree before and after."""
    from curation_assets.curation.funnel import funnel
    from curation_assets.curation.upkeep import known_primaries, table_extras
    from curation_assets.ingest.discover import InputEntry
    from curation_assets.ingest.registry import register

    register(store, [InputEntry(f"/v/{i}.mp4", None, "/v") for i in range(9)], shard_size=3)
    for n, shard in enumerate(["shard-00000", "shard-00001", "shard-00002"]):
        paths = [f"/v/{3 * n + k}.mp4" for k in range(3)]
        store.replace_shard("raw_videos", shard, pl.DataFrame(
            {"video_id": [f"h{(3 * n + k) % 4}" for k in range(3)], "seq": [3 * n + k for k in range(3)], "path": paths,
             "error": [None, None, "unreadable"]}, schema_overrides={"error": pl.Utf8}))
        store.replace_shard("curated_videos", shard, pl.DataFrame(
            {"path": paths, "status": ["kept", "rejected", "failed"],
             "reasons": [[], [f"motion_score<0.{n + 1}"], ["unreadable: empty file (0 bytes)"]]}))

    def snapshot():
        f = funnel(store)  # lines sorted: rules with equal counts may list in another order
        return (store.query("select * from curated_videos order by path").rows(),
                store.shard_writes().sort("asset", "shard").drop("written_at").rows(),
                sorted(f.lines()), dict(f.not_curated_by_shard), known_primaries(store, "shard-00002", ["h0", "h1", "h3"]))

    before = snapshot()
    assert before[4] == {"h0": (0, "/v/0.mp4"), "h1": (1, "/v/1.mp4"), "h3": (3, "/v/3.mp4")}
    compact_store(store, force=True, min_loose_objects=1, extras=table_extras())
    assert snapshot() == before
    store.replace_shard("curated_videos", "shard-00001", pl.DataFrame({"path": ["/v/3.mp4"], "status": ["kept"],
                                                                       "reasons": [[]]}))
    changed = funnel(store)
    assert (changed.status["kept"], changed.status["rejected"]) == (3, 2)
    assert changed.not_curated_by_shard == {"shard-00001": 2}
    compact_store(store, force=True, min_loose_objects=1, extras=table_extras())
    assert sorted(funnel(store).lines()) == sorted(changed.lines())


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_the_duplicate_lookup_finds_the_earliest_copy_over_row_groups_in_runs_with_and_without_the_hash(
        where, tmp_path, monkeypatch, request):
    """Copies of one content hash in many shards run over the id index's row groups (3 rows in
    runs written from fresh rows, 2,048 in runs DuckDB merges); the lookup finds each key's
    earliest copy in another shard as a scan of the rows does: in runs with the hash column, in
    runs as earlier code wrote them (sorted by the key, no hash), and in the run a merge of both
    makes; `compact --repack` gives the old runs their hash. On a folder and on S3 (runs are
    fetched to merge and uploaded streamed)."""
    import io

    import pyarrow.parquet as pq

    from curation_assets.curation.upkeep import known_primaries, table_extras, upkeep
    from curation_assets.store import id_index
    from curation_assets.store.location import forget_listings

    location = request.getfixturevalue("s3_url") if where == "s3" else None
    store = ScoreStore(tmp_path / "curation.duckdb", location=location)
    monkeypatch.setattr(id_index, "ROW_GROUP", 3)
    keys = [f"k{i}" for i in range(7)] + ["missing"]
    per = 128  # merged runs are written by DuckDB, whose row groups are at least 2,048 rows

    def add_shards(first: int, count: int) -> None:
        for n in range(first, first + count):
            seq = [per * n + i for i in range(per)]
            store.replace_shard("raw_videos", f"s{n:03d}", pl.DataFrame(
                {"video_id": [f"k{(n * 3 + i) % 7}" for i in range(per)], "seq": seq, "path": [f"/v/{q}.mp4" for q in seq],
                 "error": ["unreadable" if q % 11 == 0 else None for q in seq]}, schema_overrides={"error": pl.Utf8}))

    def scanned(shard: str) -> dict:
        rows = store.query("select video_id, seq, path from raw_videos where error is null and shard <> ? "
                           "order by seq", [shard]).rows()
        first = {}
        for vid, seq, path in rows:
            first.setdefault(vid, (seq, path))
        return first

    def agree() -> None:
        id_index._RUN_CACHE.clear()
        for shard in ("s000", "s007", "s019", "s031"):
            assert known_primaries(store, shard, keys) == scanned(shard), shard

    def runs() -> list[str]:
        forget_listings()
        folder = "tables/raw_videos/" + id_index.IDS_DIR
        return [f"{folder}/{name}" for name in store.location.list(folder) if name.endswith(".parquet")]

    def footer(key: str):
        return pq.read_metadata(io.BytesIO(store.location.read_bytes(key)))

    add_shards(0, 20)
    compact_store(store, ["raw_videos"], force=True, min_loose_objects=1, extras=table_extras())
    assert runs() and all(id_index.HASH in footer(r).schema.to_arrow_schema().names for r in runs())
    agree()

    def as_earlier_code_wrote_them():  # sorted by the key, statistics on the key, no hash
        for run in runs():
            table = pl.read_parquet(io.BytesIO(store.location.read_bytes(run)))
            if id_index.HASH not in table.columns:
                continue  # a run retired earlier (kept for its grace), already of that layout
            buffer = io.BytesIO()
            pq.write_table(table.drop(id_index.HASH).sort("video_id", "shard").to_arrow(), buffer, row_group_size=3,
                           write_statistics=["video_id"])
            store.location.write_bytes(run, buffer.getvalue())

    as_earlier_code_wrote_them()
    agree()
    add_shards(20, 20)  # as many rows again: the next pass merges the old run with the new one
    compact_store(store, ["raw_videos"], force=True, min_loose_objects=1, extras=table_extras())
    add_shards(40, 1)  # and one shard not absorbed yet: read from its loose object
    merged = store.state("raw_videos").meta["id_runs"][0]
    assert merged["rows"] > 4096  # a key's copies run over the merged run's row groups too
    assert footer(f"tables/raw_videos/{merged['name']}").num_row_groups > 1
    agree()
    # `compact --repack` gives the runs of the earlier layout their hash, one a pass
    as_earlier_code_wrote_them()
    id_index._RUN_CACHE.clear()
    reports = upkeep(store, tables=["raw_videos"], catalog=False, repack=True)
    rewritten = [r for r in reports if r.rehashed]
    assert rewritten and "1 id index run(s) rewritten" in rewritten[0].line() and not reports[-1].rehashed
    live = [f"tables/raw_videos/{r['name']}" for r in store.state("raw_videos").meta["id_runs"]]
    assert all(id_index.HASH in footer(r).schema.to_arrow_schema().names for r in live)
    agree()


def test_compact_command_absorbs_objects_of_earlier_code_and_gcs(tmp_path, monkeypatch, capsys):
    """`curation-assets compact`: every object into segments (those of earlier code too), the
    replaced files deleted once the grace allows, rows and shard_writes unchanged."""
    from curation_assets.cli import main

    data = tmp_path / "data"
    store = ScoreStore(data / "curation.duckdb")
    _legacy_object(store, "scores", "old", _rows("old", 9, 0, 2), "c0")
    store.replace_shard("scores", "new", _rows("new", 1, 0, 3), code_version="c1")
    store.replace_shard("scores", "new", _rows("new", 1, 1, 1), code_version="c2")  # a re-run
    before = store.query("select shard, writer, attempt, count(*) from scores group by all order by 1").rows()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(["compact", "--data-dir", str(data), "--grace", "0"]) == 0
    out = capsys.readouterr().out
    assert "scores: 2 shards into 1 segment(s)" in out and "compacted " in out, out
    folder = data / "tables" / "scores"
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert len(names) == 1 and names[0].startswith(layout.SEG_PREFIX), names  # loose and legacy objects GC'd
    store = ScoreStore(data / "curation.duckdb")
    assert store.query("select shard, writer, attempt, count(*) from scores group by all order by 1").rows() == before
    assert dict(store.query(f"select shard, code_version from {SHARD_WRITES}").rows()) == {"old": "c0", "new": "c2"}
    con = duckdb.connect(str(data / "curation.duckdb"), read_only=True)  # the catalog follows
    try:
        assert con.execute("select count(*) from scores").fetchone()[0] == 3
    finally:
        con.close()


def test_compact_repack_rewrites_segments_of_an_earlier_row_group_size_and_every_read_agrees(tmp_path, monkeypatch,
                                                                                                capsys):
    """Segments written with small row groups (as earlier versions did) are rewritten by
    `compact --repack`, one per table a pass until none is left: then every row group holds
    ROW_GROUP rows, and the rows, each shard's read, shard_writes and the funnel are unchanged."""
    import pyarrow.parquet as pq

    from curation_assets.cli import main
    from curation_assets.curation.funnel import funnel
    from curation_assets.curation.upkeep import upkeep
    from curation_assets.store import compaction

    data = tmp_path / "data"
    store = ScoreStore(data / "curation.duckdb")
    shards = [f"shard-{i:05d}" for i in range(12)]
    for n, shard in enumerate(shards):
        store.replace_shard("scores", shard, _rows(shard, n, 0, 5), code_version=f"c{n % 2}")
        store.replace_shard("curated_videos", shard, pl.DataFrame(
            {"path": [f"/v/{shard}-{k}.mp4" for k in range(5)], "status": ["kept", "kept", "rejected", "failed", "kept"],
             "reasons": [[], [], ["motion_score<0.5"], ["unreadable"], []]}))
    monkeypatch.setattr(compaction, "ROW_GROUP", 4)  # the earlier layout, small segments: several per table
    monkeypatch.setattr(compaction, "TARGET_ROWS", 20)
    upkeep(store, force=True)

    def segments(table):
        return sorted(p for p in (data / "tables" / table).glob(f"{layout.SEG_PREFIX}*"))

    def snapshot():
        return (store.query("select * from scores order by shard, video_id").rows(),
                store.query("select * from curated_videos order by path").rows(),
                [store.read_shard("scores", s).sort("video_id").rows() for s in shards],
                store.shard_writes().sort("asset", "shard").drop("written_at").rows(), sorted(funnel(store).lines()))

    before, old = snapshot(), segments("scores")
    assert len(old) == 3 and all(pq.ParquetFile(p).metadata.row_group(0).num_rows == 4 for p in old)
    monkeypatch.setattr(compaction, "ROW_GROUP", 8)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(["compact", "--data-dir", str(data), "--grace", "0", "--repack"]) == 0
    out = capsys.readouterr().out
    assert out.count("scores: 1 segment(s) merged") == 3 and out.count("curated_videos: 1 segment(s) merged") == 3, out
    store = ScoreStore(data / "curation.duckdb")
    for table in ("scores", "curated_videos"):
        new = segments(table)
        assert len(new) == 3 and not set(new) & set(old)  # the old ones retired and, past the grace, deleted
        assert all(pq.ParquetFile(p).metadata.row_group(0).num_rows == 8 for p in new)
    assert snapshot() == before
    assert main(["compact", "--data-dir", str(data), "--repack"]) == 0  # nothing left to repack
    assert "merged" not in capsys.readouterr().out


def test_on_s3_a_truncated_upload_is_named_and_whole_objects_are_checked_once(s3_url, tmp_path, monkeypatch):
    """An object store's object never changes under its key: the head node remembers the keys
    whose footer it saw and sends ranged GETs for new objects only; a truncated upload (a new
    key) is still found, and a re-run's object replaces it in the list."""
    import fsspec

    from curation_assets.store.location import StoreLocation

    store = ScoreStore(tmp_path / "curation.duckdb", location=s3_url)
    for shard in ("a", "b"):
        store.replace_shard("scores", shard, _rows(shard, 0, 0, 2))
    asked: list[list[str]] = []
    real_tails = StoreLocation.tails

    def counting(self, keys, nbytes=8):
        asked.append(sorted(keys))
        return real_tails(self, keys, nbytes)

    monkeypatch.setattr(StoreLocation, "tails", counting)
    assert store.unreadable(["scores"]) == []
    assert len(asked[-1]) == 2  # both checked once
    assert store.unreadable(["scores"]) == [] and asked[-1] == []  # remembered: no GET
    # a truncated upload under a new key (as a cut-off PUT would leave it)
    fs = fsspec.filesystem("s3", skip_instance_cache=True, use_listings_cache=False)
    store.replace_shard("scores", "c", _rows("c", 0, 0, 2))
    key = next(k for k in fs.ls(s3_url.removeprefix("s3://") + "/tables/scores") if "/c@" in k)
    fs.pipe_file(key, fs.cat_file(key)[:40])
    bad = store.unreadable(["scores"])
    assert [(u.table, u.shards) for u in bad] == [("scores", ("c",))] and len(asked[-1]) == 1  # c only
    assert store.unreadable(["scores"]) and len(asked[-1]) == 1  # a bad one is asked again
    store.replace_shard("scores", "c", _rows("c", 0, 1, 2))  # the re-run fixes c
    assert store.unreadable(["scores"]) == []
    remembered = (tmp_path / ".store_whole_objects").read_text().splitlines()
    assert remembered[0] == store.location.url and len(remembered) == 1 + 3  # a, b and c's new object


def test_on_s3_listings_are_remembered_within_a_command_and_forgotten_on_a_write(s3_url, tmp_path, monkeypatch):
    """Within `listings_remembered()` (status, run's bookkeeping) each folder of an object store
    is listed once; a write through the store forgets them (its own write is seen); outside, every
    read lists again (a long-lived process never reads an old listing)."""
    from curation_assets.store.location import StoreLocation, listings_remembered

    store = ScoreStore(tmp_path / "curation.duckdb", location=s3_url)
    for shard in ("a", "b"):
        store.replace_shard("scores", shard, _rows(shard, 0, 0, 2))
    calls: list[str] = []  # the LISTs sent (below the memo)
    for name in ("_list_remote", "_list_detail_remote"):
        real = getattr(StoreLocation, name)
        monkeypatch.setattr(StoreLocation, name, lambda self, prefix, real=real: calls.append(prefix) or real(self, prefix))
    store.query("select count(*) from scores")
    store.query("select count(*) from scores")
    outside = len(calls)
    assert outside >= 4  # each query lists the tables and the table's folders again

    calls.clear()
    with listings_remembered():
        assert store.query("select count(*) as n from scores")["n"][0] == 4
        first = len(calls)
        store.query("select count(*) from scores")
        store.winners("scores")
        assert len(calls) == first and first <= outside // 2  # nothing listed twice
        store.replace_shard("scores", "c", _rows("c", 0, 0, 2))  # a write: listings forgotten
        assert store.query("select count(*) as n from scores")["n"][0] == 6
    calls.clear()
    store.tables()
    store.tables()
    assert len(calls) >= 2  # outside: listed each time
