"""ScoreStore (one Parquet object per table and shard, DuckDB views over them) and the append-only video registry."""

from __future__ import annotations

import multiprocessing as mp
import traceback

import polars as pl
import pytest

from curation_assets.ingest.discover import InputEntry
from curation_assets.ingest.registry import (
    REGISTRY_SCHEMA,
    REGISTRY_TABLE,
    register,
    registered_shards,
    shard_key,
    shard_members,
    shard_number,
)
from curation_assets.store import SHARD_WRITES, ScoreStore, StoreError


@pytest.fixture
def store(tmp_path) -> ScoreStore:
    return ScoreStore(tmp_path / "db" / "curation.duckdb", lock_timeout_s=60)


def _rows(store: ScoreStore, table: str = "scores") -> list[tuple]:
    return [tuple(r) for r in store.query(f"select shard, video_id, score from {table} order by shard, video_id").rows()]


def _scores(shard: str, ids: list[str], score: float) -> pl.DataFrame:
    return pl.DataFrame({"video_id": ids, "score": [score] * len(ids), "shard": [shard] * len(ids)})


# --------------------------------------------------------------------------- ScoreStore


def test_fresh_store_has_no_tables(store):
    assert store.tables() == set()
    assert not store.db_path.exists()  # reading creates nothing


def test_replace_shard_replaces_only_that_shard(store):
    assert store.replace_shard("scores", "s1", _scores("s1", ["a", "b"], 1.0), code_version="v1") == 2
    assert store.replace_shard("scores", "s2", _scores("s2", ["c"], 2.0), code_version="v1") == 1
    assert store.replace_shard("scores", "s1", _scores("s1", ["d"], 3.0), code_version="v2") == 1
    assert _rows(store) == [("s1", "d", 3.0), ("s2", "c", 2.0)]
    assert store.tables() >= {"scores", SHARD_WRITES}

    writes = store.query(f"select asset, shard, rows, code_version from {SHARD_WRITES} order by shard").rows()
    assert writes == [("scores", "s1", 1, "v2"), ("scores", "s2", 1, "v1")]


def test_replace_shard_adds_the_shard_column(store):
    store.replace_shard("scores", "s1", pl.DataFrame({"video_id": ["a"], "score": [0.5]}))
    assert _rows(store) == [("s1", "a", 0.5)]
    assert store.read_shard("scores", "s1")["video_id"].to_list() == ["a"]
    assert store.read_shard("scores", "other").height == 0


def test_replace_shard_with_no_rows_empties_it(store):
    store.replace_shard("scores", "s1", _scores("s1", ["a", "b"], 1.0))
    store.replace_shard("scores", "s2", _scores("s2", ["c"], 2.0))
    empty = pl.DataFrame(schema={"video_id": pl.Utf8, "score": pl.Float64})
    assert store.replace_shard("scores", "s1", empty) == 0
    assert _rows(store) == [("s2", "c", 2.0)]
    assert store.query(f"select rows from {SHARD_WRITES} where shard = 's1'")["rows"].to_list() == [0]


def test_new_column_is_added_to_the_table(store):
    store.replace_shard("scores", "s1", _scores("s1", ["a"], 1.0))
    newer = _scores("s2", ["b"], 2.0).with_columns(pl.lit("extra").alias("note"), pl.lit(7).cast(pl.Int32).alias("n"))
    store.replace_shard("scores", "s2", newer)
    frame = store.query("select shard, note, n from scores order by shard")
    assert frame.rows() == [("s1", None, None), ("s2", "extra", 7)]
    types = dict(store.query("select column_name, data_type from information_schema.columns where table_name = 'scores'").rows())
    assert types["note"] == "VARCHAR" and types["n"] == "INTEGER"


def test_rows_of_another_shard_are_refused_and_old_rows_kept(store):
    store.replace_shard("scores", "s1", _scores("s1", ["a"], 1.0), code_version="v1")
    mixed = pl.concat([_scores("s1", ["b"], 2.0), _scores("s2", ["c"], 3.0)])
    with pytest.raises(StoreError, match="other than 's1'"):
        store.replace_shard("scores", "s1", mixed)
    with pytest.raises(StoreError):
        store.replace_shard("scores", "s1", _scores("s2", ["c"], 3.0))
    assert _rows(store) == [("s1", "a", 1.0)]


def test_failure_mid_transaction_rolls_back(store):
    store.replace_shard("scores", "s1", _scores("s1", ["a", "b"], 1.0), code_version="v1")
    # A string where the table holds DOUBLE: the delete has run when the insert fails.
    bad = pl.DataFrame({"video_id": ["x"], "score": ["not a number"], "shard": ["s1"], "brand_new": [1]})
    with pytest.raises(Exception, match="(?i)conver"):
        store.replace_shard("scores", "s1", bad, code_version="v2")
    assert _rows(store) == [("s1", "a", 1.0), ("s1", "b", 1.0)]
    # The column the failed write added is rolled back too, and so is the bookkeeping.
    columns = store.query("select column_name from information_schema.columns where table_name = 'scores'")
    assert "brand_new" not in columns["column_name"].to_list()
    assert store.query(f"select code_version from {SHARD_WRITES}").rows() == [("v1",)]


def test_append(store):
    assert store.append("log", pl.DataFrame({"k": [1, 2]})) == 2
    assert store.append("log", pl.DataFrame({"k": [3]})) == 1
    assert store.append("log", pl.DataFrame(schema={"k": pl.Int64})) == 0
    assert store.query("select k from log order by k")["k"].to_list() == [1, 2, 3]


@pytest.mark.parametrize("name", ["bad-name", "x; drop table scores", 'q"uote', "a b"])
def test_invalid_table_names_refused(store, name):
    with pytest.raises(StoreError, match="invalid table name"):
        store.replace_shard(name, "s1", _scores("s1", ["a"], 1.0))
    with pytest.raises(StoreError, match="invalid table name"):
        store.read_shard(name, "s1")


def test_read_shard_of_missing_table_explains(store):
    with pytest.raises(StoreError, match="does not exist"):
        store.read_shard("scores", "s1")


def test_transaction_rolls_back_on_error(store):
    # transaction() is the catalog file's, for the user's own tables beside the store's views
    with store.transaction() as con:
        con.execute("create table notes as select 1 as k")
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction() as con:
            con.execute("delete from notes")
            raise RuntimeError("boom")
    with store.connect() as con:
        assert con.execute("select k from notes").fetchall() == [(1,)]


# --------------------------------------------------------------------------- concurrency


N_WORKERS, N_WRITES, ROWS_PER_WRITE = 4, 10, 5


def _concurrent_writer(db_path: str, worker: int, barrier, errors) -> None:
    try:
        store = ScoreStore(db_path, lock_timeout_s=120)
        shard = f"s{worker}"
        barrier.wait(timeout=120)
        for attempt in range(N_WRITES):
            ids = [f"w{worker}-r{i}" for i in range(ROWS_PER_WRITE)]
            frame = pl.DataFrame({"video_id": ids, "score": [float(attempt)] * ROWS_PER_WRITE, "worker": [worker] * ROWS_PER_WRITE})
            store.replace_shard("scores", shard, frame, code_version=f"attempt-{attempt}")
    except BaseException:  # report everything to the parent
        errors.put(f"worker {worker}: {traceback.format_exc()}")
        raise


def test_concurrent_processes_writing_different_shards(tmp_path):
    db_path = str(tmp_path / "shared.duckdb")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(N_WORKERS)
    errors = ctx.Queue()
    procs = [ctx.Process(target=_concurrent_writer, args=(db_path, w, barrier, errors)) for w in range(N_WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
    messages = []
    while not errors.empty():
        messages.append(errors.get_nowait())
    assert not alive, "a writer hung"
    assert not messages, "\n".join(messages)
    assert [p.exitcode for p in procs] == [0] * N_WORKERS

    store = ScoreStore(db_path)
    frame = store.query("select shard, video_id, score, worker from scores order by shard, video_id")
    expected = [
        (f"s{w}", f"w{w}-r{i}", float(N_WRITES - 1), w) for w in range(N_WORKERS) for i in range(ROWS_PER_WRITE)
    ]
    assert frame.rows() == expected
    writes = store.query(f"select shard, rows, code_version from {SHARD_WRITES} order by shard").rows()
    assert writes == [(f"s{w}", ROWS_PER_WRITE, f"attempt-{N_WRITES - 1}") for w in range(N_WORKERS)]


# --------------------------------------------------------------------------- registry


def _entries(names: list[str], origin: str = "/in") -> list[InputEntry]:
    return [InputEntry(f"/videos/{n}.mp4", f"caption {n}", origin) for n in names]


def _registry(store: ScoreStore) -> list[tuple]:
    return store.query(f"select seq, path, shard from {REGISTRY_TABLE} order by seq").rows()


def test_shard_key_and_number():
    assert shard_key(0) == "shard-00000"
    assert shard_key(42) == "shard-00042"
    assert shard_number("shard-00042") == 42
    for bad in ("shard-", "shard-x", "part-00001", "shard-1a"):
        with pytest.raises(ValueError):
            shard_number(bad)


def test_register_into_shards_of_shard_size(store):
    new = register(store, _entries(["a", "b", "c", "d", "e"]), shard_size=2)
    assert new == ["shard-00000", "shard-00001", "shard-00002"]
    assert _registry(store) == [
        (0, "/videos/a.mp4", "shard-00000"),
        (1, "/videos/b.mp4", "shard-00000"),
        (2, "/videos/c.mp4", "shard-00001"),
        (3, "/videos/d.mp4", "shard-00001"),
        (4, "/videos/e.mp4", "shard-00002"),
    ]
    assert registered_shards(store) == new
    members = shard_members(store, "shard-00001")
    assert members["path"].to_list() == ["/videos/c.mp4", "/videos/d.mp4"]
    assert members["manifest_text"].to_list() == ["caption c", "caption d"]
    assert members["origin"].to_list() == ["/in", "/in"]


def test_register_is_append_only(store):
    register(store, _entries(["a", "b", "c"]), shard_size=2)  # shard-00000: a b, shard-00001: c
    before = store.query(f"select * from {REGISTRY_TABLE} order by seq")
    new = register(store, _entries(["a", "b", "c", "d", "e", "f"], origin="/again"), shard_size=2)
    # The half-full shard-00001 is NOT topped up: new files open new shards.
    assert new == ["shard-00002", "shard-00003"]
    after = store.query(f"select * from {REGISTRY_TABLE} order by seq")
    assert after.head(3).equals(before)  # old rows untouched, origin and timestamps included
    assert _registry(store)[3:] == [
        (3, "/videos/d.mp4", "shard-00002"),
        (4, "/videos/e.mp4", "shard-00002"),
        (5, "/videos/f.mp4", "shard-00003"),
    ]
    assert shard_members(store, "shard-00001")["path"].to_list() == ["/videos/c.mp4"]


def test_register_nothing_new_returns_no_shards(store):
    register(store, _entries(["a"]), shard_size=4)
    assert register(store, _entries(["a"]), shard_size=4) == []
    assert register(store, [], shard_size=4) == []
    assert len(_registry(store)) == 1


def test_register_skips_duplicates_within_one_call(store):
    entries = _entries(["a", "b", "a", "c", "b"])
    assert register(store, entries, shard_size=10) == ["shard-00000"]
    assert [r[1] for r in _registry(store)] == ["/videos/a.mp4", "/videos/b.mp4", "/videos/c.mp4"]


def test_register_keeps_errors(store):
    bad = InputEntry("/in/m.jsonl:3", None, "/in/m.jsonl", "manifest line is not valid JSON: x")
    register(store, [*_entries(["a"]), bad], shard_size=10)
    row = shard_members(store, "shard-00000").filter(pl.col("path") == "/in/m.jsonl:3")
    assert row["registration_error"].to_list() == ["manifest line is not valid JSON: x"]


def test_register_rejects_bad_shard_size(store):
    with pytest.raises(ValueError, match="shard_size"):
        register(store, _entries(["a"]), shard_size=0)


def test_registry_reads_on_empty_store(store):
    assert registered_shards(store) == []
    assert shard_members(store, "shard-00000").height == 0


def test_register_past_shard_99999_opens_a_new_shard(store):
    # pretend 100001 shards already exist (cheaper than registering them): write two shard objects
    for seq, shard in ((0, "shard-99999"), (1, "shard-100000")):
        frame = pl.DataFrame([{"seq": seq, "path": f"/videos/{seq}.mp4", "shard": shard}], schema=REGISTRY_SCHEMA)
        store.replace_partition(REGISTRY_TABLE, shard, frame)
    assert register(store, _entries(["next"]), shard_size=1) == ["shard-100001"]
