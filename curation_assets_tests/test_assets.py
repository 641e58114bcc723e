"""The asset graph run in-process, the way the UI's job runs it, on the synthetic corpus."""

import polars as pl
import pytest
from dagster import DagsterInstance, Definitions, instance_for_test

from curation_assets.definitions import build_definitions, defs, expected_code_versions
from curation_assets.ingest.discover import discover
from curation_assets.ingest.registry import register
from curation_assets.jobs import CURATE_SHARDS_JOB
from curation_assets.partitions import shard_partitions
from curation_assets.samples.synthetic import DEMO_EXPECTED
from curation_assets.staleness import shards_needing_run
from curation_assets.store import ScoreStore

EXPECTED_STATUS = {
    "ok": ("kept", []),
    "slow_motion": ("kept", []),
    "too_fast": ("kept", []),  # no motion_max by default, as in data-juicer
    "text": ("kept", []),  # OCR area arrives with the learned scorers
    "static": ("rejected", ["motion_score<0.25", "char_rep_ratio>0.2"]),
    "low_resolution": ("rejected", ["width<256", "height<256", "caption_missing"]),
    "uncaptioned": ("rejected", ["caption_missing"]),
    "duplicate": ("rejected", None),
    "unreadable": ("failed", None),
}


def run_shard(defs_, instance, shard, run_config=None):
    job = defs_.resolve_job_def(CURATE_SHARDS_JOB)
    return job.execute_in_process(partition_key=shard, instance=instance, run_config=run_config or {})


@pytest.fixture
def registered(demo_copy, tmp_path):
    store = ScoreStore(tmp_path / "curation.duckdb")
    shards = register(store, discover(demo_copy / "manifest.jsonl"), shard_size=100)
    return store, shards


def test_definitions_load():
    Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_videos", "resolution", "motion", "captions", "caption_repetition", "curated_videos"} <= keys


def test_whole_shard_verdicts_and_checks(registered, tmp_path):
    store, shards = registered
    assert shards == ["shard-00000"]
    defs_ = build_definitions(recipe={}, data_dir=str(tmp_path))
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, shards)
        result = run_shard(defs_, instance, "shard-00000")
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks), [(c.check_name, c.passed) for c in checks]

    curated = store.read_shard("curated_videos", "shard-00000")
    assert curated.height == len(DEMO_EXPECTED)  # every file, exactly once
    assert curated["path"].n_unique() == curated.height
    by_name = {row["path"].rsplit("/", 1)[-1]: row for row in curated.iter_rows(named=True)}
    for name, kind in DEMO_EXPECTED.items():
        status, reasons = EXPECTED_STATUS[kind]
        row = by_name[name]
        assert row["status"] == status, (name, row)
        if reasons is not None:
            assert row["reasons"] == reasons, (name, row["reasons"])
        if status == "failed":
            assert row["reasons"] and row["reasons"][0].startswith("unreadable: ")
    assert by_name["good_pan_right_copy.mp4"]["reasons"][0].endswith("good_pan_right.mp4")

    # scores: one row per distinct readable video, keyed by video_id
    raw = store.read_shard("raw_videos", "shard-00000")
    primaries = raw.filter(pl.col("error").is_null() & pl.col("duplicate_of").is_null())
    motion = store.read_shard("motion", "shard-00000")
    assert sorted(motion["video_id"].to_list()) == sorted(primaries["video_id"].to_list())
    assert motion["params"].str.contains('"frame_selection": "datajuicer"').all()
    resolution = store.read_shard("resolution", "shard-00000")
    assert resolution.height == primaries.height


def test_rerun_replaces_rows_without_duplicates(registered, tmp_path):
    store, shards = registered
    defs_ = build_definitions(recipe={}, data_dir=str(tmp_path))
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, shards)
        assert run_shard(defs_, instance, shards[0]).success
        first = {t: store.read_shard(t, shards[0]).height for t in ("raw_videos", "motion", "curated_videos")}
        assert run_shard(defs_, instance, shards[0]).success
        second = {t: store.read_shard(t, shards[0]).height for t in ("raw_videos", "motion", "curated_videos")}
    assert first == second


def test_threshold_change_marks_only_curation_stale_and_applies(registered, tmp_path):
    store, shards = registered
    base = build_definitions(recipe={}, data_dir=str(tmp_path))
    strict_recipe = {"curated_videos": {"thresholds": {"motion_min": 3.0}}}
    strict = build_definitions(recipe=strict_recipe, data_dir=str(tmp_path))
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, shards)
        assert shards_needing_run(store, expected_code_versions({})) == {shards[0]: list(expected_code_versions({}))}
        assert run_shard(base, instance, shards[0]).success
        assert shards_needing_run(store, expected_code_versions({})) == {}
        assert shards_needing_run(store, expected_code_versions(strict_recipe)) == {shards[0]: ["curated_videos"]}
        assert run_shard(strict, instance, shards[0]).success
    curated = {r["path"].rsplit("/", 1)[-1]: r for r in store.read_shard("curated_videos", shards[0]).iter_rows(named=True)}
    assert curated["good_pan_right.mp4"]["status"] == "rejected"
    assert curated["good_pan_right.mp4"]["reasons"] == ["motion_score<3"]
    assert curated["good_diagonal.mp4"]["status"] == "kept"  # scores ~3.6


def test_per_source_thresholds(registered, tmp_path):
    store, shards = registered
    recipe = {"curated_videos": {"per_source": {"original": {"char_rep_ratio_max": 0.9}}}}
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, shards)
        assert run_shard(build_definitions(recipe=recipe, data_dir=str(tmp_path)), instance, shards[0]).success
    static = store.query("select reasons from curated_videos where path like '%static.mp4'")["reasons"][0].to_list()
    assert static == ["motion_score<0.25"]


def test_cross_shard_duplicate_points_at_first_copy(demo_copy, tmp_path):
    store = ScoreStore(tmp_path / "curation.duckdb")
    register(store, discover(demo_copy / "good_pan_right.mp4"), shard_size=1)
    register(store, discover(demo_copy / "good_pan_right_copy.mp4"), shard_size=1)
    defs_ = build_definitions(recipe={}, data_dir=str(tmp_path))
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, ["shard-00000", "shard-00001"])
        assert run_shard(defs_, instance, "shard-00000").success
        assert run_shard(defs_, instance, "shard-00001").success
    second = store.read_shard("curated_videos", "shard-00001").row(0, named=True)
    assert second["status"] == "rejected" and second["reasons"][0].endswith("good_pan_right.mp4")
    assert store.read_shard("motion", "shard-00001").height == 0  # not scored twice
