"""Shot clips live under the store location with location-relative keys: a data dir moved
elsewhere still decodes them, rows of older data dirs (absolute clip paths) still read, and a
remote location gets each clip uploaded whole and fetched back for decoding."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from dagster import instance_for_test

from curation_assets.ingest.discover import discover
from curation_assets.ingest.registry import register
from curation_assets.orchestration.definitions import build_definitions
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.samples.synthetic import write_scene_sequence
from curation_assets.scorers.hashing import content_hash
from curation_assets.scorers.probe import probe_video
from curation_assets.scorers.shots import ShotParams, SplitJob, clip_key, plan_clips, split_source
from curation_assets.store import ScoreStore, StoreLocation
from curation_assets_tests.test_assets import run_shard

SHARD = "shard-00000"
RECIPE = {"shots": {"enabled": True, "min_clip_s": 2, "max_clip_s": 4, "split_longer_than_s": 4}}
SCENES = [60, 30, 130, 70]  # 24 fps: 4 clips of 2-4 s (the 130-frame shot in 2), the 30-frame shot dropped


@pytest.fixture
def split_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("CURATION_STORE", raising=False)
    film, cuts = write_scene_sequence(tmp_path / "in" / "film.mp4", SCENES, width=160, height=128, fps=24)
    data = tmp_path / "data"
    store = ScoreStore(data / "curation.duckdb")
    register(store, discover(film), shard_size=10)
    _run(data, ["shots", "raw_videos"])
    plans, _ = plan_clips(cuts, sum(SCENES), 24.0, 2, 4)
    return data, film, [clip_key(content_hash(film), p) for p in plans]


def _run(data: Path, assets: list[str]) -> None:
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, [SHARD])
        assert run_shard(build_definitions(recipe=RECIPE, data_dir=str(data)), instance, only=assets).success


def _clip_rows(store: ScoreStore, film: Path) -> pl.DataFrame:
    return store.read_shard("raw_videos", SHARD).filter(pl.col("source_path") == str(film)).sort("clip_index")


def test_clips_are_written_under_the_location_with_relative_keys(split_data_dir):
    data, film, keys = split_data_dir
    store = ScoreStore(data / "curation.duckdb")
    shots = store.read_shard("shots", SHARD).filter(pl.col("kind") == "clip").sort("clip_index")
    assert shots["clip_path"].to_list() == keys and all(k.startswith("clips/") for k in keys)
    clips = _clip_rows(store, film)
    assert clips["path"].to_list() == keys and clips["error"].is_null().all()
    assert all((data / k).is_file() for k in keys)
    assert not [p for p in (data / "clips").rglob("*") if p.is_file() and p.name.count(".") > 1]  # no temp file left
    assert (clips["frame_count"] == clips["end_frame"] - clips["start_frame"]).all()  # probed where they lie


def test_moved_data_dir_still_decodes_its_clips(split_data_dir, tmp_path):
    data, film, keys = split_data_dir
    moved = tmp_path / "elsewhere" / "data"
    moved.parent.mkdir()
    shutil.move(str(data), str(moved))
    _run(moved, ["motion", "sampled_frames"])  # decodes every clip, found through the moved location
    store = ScoreStore(moved / "curation.duckdb")
    ids = _clip_rows(store, film)["video_id"].to_list()
    frames = store.read_shard("sampled_frames", SHARD).filter(pl.col("video_id").is_in(ids))
    motion = store.read_shard("motion", SHARD).filter(pl.col("video_id").is_in(ids))
    assert frames.height == motion.height == len(keys)
    assert frames["error"].is_null().all() and motion["error"].is_null().all(), motion["error"].to_list()
    assert (frames["frame_paths"].list.len() > 0).all()
    # raw_videos re-run on the moved dir: the same relative keys, probed where they now lie
    _run(moved, ["raw_videos"])
    clips = _clip_rows(store, film)
    assert clips["path"].to_list() == keys and clips["error"].is_null().all()


def test_absolute_clip_paths_of_older_data_dirs_still_read(split_data_dir):
    data, film, keys = split_data_dir
    store = ScoreStore(data / "curation.duckdb")
    old = store.read_shard("shots", SHARD)
    # rows as the version before location-relative keys wrote them: absolute clip paths
    legacy = old.with_columns(pl.when(pl.col("kind") == "clip").then(pl.lit(str(data) + "/") + pl.col("clip_path"))
                              .otherwise(pl.col("clip_path")).alias("clip_path")).drop("shard", "code_version")
    store.replace_shard("shots", SHARD, legacy, code_version=old["code_version"][0])
    _run(data, ["raw_videos", "motion", "sampled_frames"])
    clips = _clip_rows(store, film)
    assert clips["path"].to_list() == [str(data / k) for k in keys]  # an absolute path stays as it is
    assert clips["error"].is_null().all()
    frames = store.read_shard("sampled_frames", SHARD).filter(pl.col("video_id").is_in(clips["video_id"].to_list()))
    assert frames.height == len(keys) and frames["error"].is_null().all()


def test_clips_at_a_remote_location_are_uploaded_whole_and_fetched_to_decode(tmp_path):
    url = "memory://curation-shot-clips-test"
    location = StoreLocation(url)
    film, _ = write_scene_sequence(tmp_path / "film.mp4", SCENES, width=160, height=128, fps=24)
    staging = tmp_path / "staging"
    job = SplitJob(str(film), content_hash(film), url, ShotParams(min_clip_s=2, max_clip_s=4), staging_dir=str(staging))
    try:
        out = split_source(job)
        assert len(out["clips"]) == 4 and all(c["error"] is None for c in out["clips"])
        assert not [p for p in staging.rglob("*") if p.is_file()]  # staged, uploaded, removed
        for clip in out["clips"]:
            assert clip["key"].startswith("clips/") and clip["path"] == f"{url}/{clip['key']}"
            assert location.exists(clip["key"])
            local = location.local_file(clip["key"], tmp_path / "cache")
            assert local == str(tmp_path / "cache" / clip["key"])
            assert probe_video(local).frame_count == clip["plan"].end_frame - clip["plan"].start_frame
        again = split_source(job)  # write-once: a re-run of the same plan reuses every clip
        assert [c["mode"] for c in again["clips"]] == ["existing"] * 4
    finally:
        location.fs.rm(location.root, recursive=True)
