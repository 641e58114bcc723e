"""Faults: missing model weights, a run killed mid-shard, two runs writing at once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from dagster import instance_for_test

from curation_assets.orchestration.definitions import build_definitions
from curation_assets.ingest.discover import discover
from curation_assets.ingest.registry import register
from curation_assets.orchestration.jobs import CURATE_SHARDS_JOB
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.store import ScoreStore

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAMES = ["good_pan_right.mp4", "good_tilt_down.mp4", "static.mp4", "zero_byte.mp4"]


def _register(demo_copy, data: Path, names=NAMES, shard_size=10) -> ScoreStore:
    store = ScoreStore(data / "curation.duckdb")
    register(store, [e for n in names for e in discover(demo_copy / n)], shard_size=shard_size)
    return store


def test_missing_weights_stop_the_job_in_its_first_step_with_no_rows(demo_copy, tmp_path, monkeypatch):
    """A job launched without the weights its recipe needs (the UI's path; the CLI checks
    before it launches) fails in its first step, naming every missing weight, before the
    decode pass: no table gets a row. (One model missing at load time inside a step fails
    only that asset: test_assets.py.)"""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf"))
    monkeypatch.delenv("CURATION_MODEL_DIR", raising=False)
    store = _register(demo_copy, tmp_path)
    defs_ = build_definitions(recipe={}, data_dir=str(tmp_path), profile="real")
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, ["shard-00000"])
        result = defs_.resolve_job_def(CURATE_SHARDS_JOB).execute_in_process(
            partition_key="shard-00000", instance=instance, raise_on_error=False)
    assert not result.success
    failed = {e.step_key: str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure}
    assert list(failed) == ["raw_videos"]
    message = failed["raw_videos"]
    assert "missing model weights: 4" in message
    for weight in ("ViT-B-32", "ViT-L-14", "sac+logos+ava1-l14-linearMSE", "video-blip-opt-2.7b-ego4d"):
        assert weight in message
    tables = store.tables()
    for table in ("raw_videos", "motion", "sampled_frames", "clip_similarity", "aesthetics", "curated_videos"):
        assert table not in tables or store.read_shard(table, "shard-00000").height == 0


def _cli(args, env, **kw):
    return subprocess.Popen([str(BIN / "curation-assets"), *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def _env(tmp_path):
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "dagster_home"), CURATION_WORKERS="1")
    env.pop("CURATION_RECIPE", None)
    return env


def _counts(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"select count(*), count(distinct path) from {t}").fetchone()
                for t in ("raw_videos", "curated_videos")}
    finally:
        con.close()


@pytest.mark.slow
def test_killed_run_is_completed_by_a_rerun_without_duplicates(demo_copy, tmp_path):
    data = tmp_path / "data"
    args = ["run", "--input", str(demo_copy / "manifest.jsonl"), "--data-dir", str(data), "--shard-size", "7",
            "--workers", "1", "--no-outputs"]
    proc = _cli(args, _env(tmp_path))
    db = data / "curation.duckdb"
    deadline = time.time() + 240
    # kill once the first shard is part-way: raw_videos written, curated_videos not yet
    store = ScoreStore(db)  # polls under the store's lock, as any other client must
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.3)
        if "shard_writes" in store.tables() and "raw_videos" in store.query("select asset from shard_writes")["asset"].to_list():
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert "curated_videos" not in store.query("select asset from shard_writes")["asset"].to_list()

    rerun = _cli(args, _env(tmp_path))
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out
    assert "2 shards to run" in out
    counts = _counts(db)
    assert counts["raw_videos"] == (13, 13) and counts["curated_videos"] == (13, 13), counts


@pytest.mark.slow
def test_two_runs_at_once_on_one_store(demo_copy, tmp_path):
    """Two processes register and curate different inputs into the same DuckDB file at once."""
    data = tmp_path / "data"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for i, name in enumerate(["good_pan_right.mp4", "good_tilt_down.mp4", "static.mp4", "good_diagonal.mp4"]):
        (tmp_path / ("a" if i % 2 else "b") / name).write_bytes((demo_copy / name).read_bytes())
    env = _env(tmp_path)
    procs = [_cli(["run", "--input", str(tmp_path / d), "--data-dir", str(data), "--no-outputs"], env) for d in "ab"]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out
        assert "Could not set lock" not in out
    counts = _counts(data / "curation.duckdb")
    assert counts["curated_videos"] == (4, 4)
    con = duckdb.connect(str(data / "curation.duckdb"), read_only=True)
    shards = con.execute("select shard, count(*) from video_registry group by shard order by shard").fetchall()
    assert [n for _, n in shards] == [2, 2] and len({s for s, _ in shards}) == 2  # no shard shared by both runs
