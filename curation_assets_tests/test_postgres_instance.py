"""The Dagster instance in Postgres (deploy/dagster.postgres.yaml) on a throwaway server.

The test starts Debian's postgresql with initdb + pg_ctl in a temp dir, listening on
127.0.0.1 at a free port and on a socket in that dir, runs the CLI and a sensor tick against
it, and stops it after. (A Postgres that refuses the connection: test_deployment.py.)
"""

import shutil
from pathlib import Path

import pytest

from cluster_fixtures import deployment_env, postgres_url  # noqa: F401 (fixtures)
from curation_assets.cli import main

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_YAML = REPO_ROOT / "deploy" / "dagster.postgres.yaml"


def test_cli_and_sensor_tick_on_a_postgres_instance(postgres_url, isolated_env, deployment_env, demo_copy, tmp_path,
                                                     monkeypatch, capsys):
    from dagster import DagsterInstance, RunsFilter, SensorResult, build_sensor_context
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    from curation_assets.orchestration.definitions import build_definitions
    from curation_assets.orchestration.jobs import CURATE_SHARDS_JOB
    from curation_assets.orchestration.partitions import shard_partitions
    from curation_assets.orchestration.sensors import new_video_files

    monkeypatch.setenv("CURATION_PG_URL", postgres_url)
    inputs = tmp_path / "one_video"
    inputs.mkdir()
    shutil.copyfile(demo_copy / "good_pan_right.mp4", inputs / "good_pan_right.mp4")
    assert main(["run", "--input", str(inputs), "--data-dir", str(isolated_env), "--workers", "1", "--no-outputs",
                 "--instance", str(POSTGRES_YAML)]) == 0
    assert "shard-00000: ok" in capsys.readouterr().out

    with DagsterInstance.get() as instance:  # $DAGSTER_HOME now holds the Postgres variant
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        runs = instance.get_runs(RunsFilter(job_name=CURATE_SHARDS_JOB))
        assert [(r.tags["dagster/partition"], r.is_success) for r in runs] == [("shard-00000", True)]

        # a sensor tick against the same instance registers a dropped file as a new shard
        raw = tmp_path / "raw"
        raw.mkdir()
        shutil.copyfile(demo_copy / "static.mp4", raw / "static.mp4")
        result = new_video_files(build_sensor_context(instance=instance))
        assert isinstance(result, SensorResult)
        assert [r.partition_key for r in result.run_requests] == ["shard-00001"]
        instance.add_dynamic_partitions(shard_partitions.name, ["shard-00001"])
        # ...and the run it requests executes with its events in Postgres
        job = build_definitions(recipe={}).resolve_job_def(CURATE_SHARDS_JOB)
        assert job.execute_in_process(partition_key="shard-00001", instance=instance).success
        assert set(instance.get_dynamic_partitions(shard_partitions.name)) == {"shard-00000", "shard-00001"}
        assert len(instance.get_runs(RunsFilter(job_name=CURATE_SHARDS_JOB))) == 2
