"""The sensor registers dropped files as shards; the schedule re-runs missing or stale shards."""

import shutil

from dagster import SensorResult, SkipReason, build_schedule_context, build_sensor_context, instance_for_test

from curation_assets.orchestration.definitions import build_definitions, expected_code_versions
from curation_assets.ingest.registry import registered_shards
from curation_assets.orchestration.jobs import CURATE_SHARDS_JOB
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import run_config
from curation_assets.orchestration.schedules import build_rescore_schedule
from curation_assets.orchestration.sensors import new_video_files
from curation_assets.store import ScoreStore


def _drop(demo_copy, raw_dir, names):
    raw_dir.mkdir(exist_ok=True)
    for name in names:
        shutil.copyfile(demo_copy / name, raw_dir / name)


def test_sensor_registers_new_files_as_new_shards(isolated_env, demo_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("CURATION_SHARD_SIZE", "2")
    raw = tmp_path / "raw"
    with instance_for_test() as instance:
        assert isinstance(new_video_files(build_sensor_context(instance=instance)), SkipReason)  # no folder yet

        _drop(demo_copy, raw, ["good_pan_right.mp4", "static.mp4", "low_res.mp4"])
        context = build_sensor_context(instance=instance)
        result = new_video_files(context)
        assert isinstance(result, SensorResult)
        assert [r.partition_key for r in result.run_requests] == ["shard-00000", "shard-00001"]
        assert result.dynamic_partitions_requests[0].partition_keys == ["shard-00000", "shard-00001"]
        instance.add_dynamic_partitions(shard_partitions.name, ["shard-00000", "shard-00001"])

        again = new_video_files(build_sensor_context(instance=instance, cursor=context.cursor))
        assert isinstance(again, SkipReason)

        _drop(demo_copy, raw, ["good_tilt_down.mp4"])
        third = new_video_files(build_sensor_context(instance=instance))
        assert [r.partition_key for r in third.run_requests] == ["shard-00002"]
    store = ScoreStore(isolated_env / "curation.duckdb")
    assert registered_shards(store) == ["shard-00000", "shard-00001", "shard-00002"]
    members = store.query("select shard, count(*) n from video_registry group by shard order by shard")
    assert members["n"].to_list() == [2, 1, 1]  # existing shards never grow


def test_schedule_requests_missing_then_stale_shards(isolated_env, demo_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("CURATION_SHARD_SIZE", "10")
    _drop(demo_copy, tmp_path / "raw", ["good_pan_right.mp4", "static.mp4"])
    defs_ = build_definitions(recipe={})
    base_schedule = build_rescore_schedule(expected_code_versions({}), run_config({}))
    with instance_for_test() as instance:
        result = new_video_files(build_sensor_context(instance=instance))
        instance.add_dynamic_partitions(shard_partitions.name, result.dynamic_partitions_requests[0].partition_keys)

        requests = base_schedule(build_schedule_context(instance=instance))
        assert [r.partition_key for r in requests] == ["shard-00000"]

        job = defs_.resolve_job_def(CURATE_SHARDS_JOB)
        assert job.execute_in_process(partition_key="shard-00000", instance=instance).success
        assert isinstance(base_schedule(build_schedule_context(instance=instance)), SkipReason)

        recipe = {"motion": {"size": 128}}
        changed = build_rescore_schedule(expected_code_versions(recipe), run_config(recipe))
        stale = changed(build_schedule_context(instance=instance))
        assert [r.partition_key for r in stale] == ["shard-00000"]
        assert stale[0].tags["curation/stale_assets"] == "motion"
        assert stale[0].run_config == {"ops": {"video_pass": {"config": {"motion": {"size": 128}}}}}


def test_every_tick_without_runs_says_why(isolated_env, demo_copy, tmp_path):
    """The reason shows on the tick in the UI: a SkipReason, or a SensorResult's skip_reason."""
    from curation_assets.ingest.discover import discover_folder
    from curation_assets.ingest.registry import register

    with instance_for_test() as instance:
        missing = new_video_files(build_sensor_context(instance=instance))
        assert isinstance(missing, SkipReason) and f"{tmp_path / 'raw'} does not exist" in missing.skip_message
        # shards registered by the CLI: the sensor adds their partitions, requests no run, and says so
        _drop(demo_copy, tmp_path / "raw", ["good_pan_right.mp4"])
        register(ScoreStore(isolated_env / "curation.duckdb"), discover_folder(tmp_path / "raw"), 4)
        result = new_video_files(build_sensor_context(instance=instance))
        assert isinstance(result, SensorResult) and not result.run_requests
        assert result.dynamic_partitions_requests[0].partition_keys == ["shard-00000"]
        assert result.skip_reason.skip_message.startswith(f"no new files in {tmp_path / 'raw'}; added 1 shard partitions")
