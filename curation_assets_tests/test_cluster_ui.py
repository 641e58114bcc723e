"""The UI/daemon path on a cluster deployment, end to end: `curation-assets ui --engine ray
--ray-address ADDR --instance deploy/dagster.postgres.yaml` on a two-node local Ray cluster
and a throwaway Postgres, both started by the test.

Videos dropped in the input folder: the daemon's sensor tick registers them as a shard and
requests a run; the run worker's steps send their decode tasks and model calls to Ray; the
run succeeds, every row lands once, the run and its events are in Postgres, the model steps
record the Ray node they ran on, and the model actors exit once the run's processes are gone
(released at process exit, then the idle time).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from cluster_fixtures import deployment_env, free_port, postgres_url, ray_cluster  # noqa: F401 (fixtures)
from curation_assets.samples.synthetic import write_moving_pattern, write_static
from test_ui_browser import SHARD, Server, _run_errors, _stop_group, _wait_for_run, _wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(540)]
REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POSTGRES_YAML = REPO_ROOT / "deploy" / "dagster.postgres.yaml"
IDLE_S = "5"
SCORE_TABLES = ("motion", "resolution", "captions", "clip_similarity", "aesthetics", "ocr_area", "curated_videos")


def _model_actors() -> set[str]:
    import ray

    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("curation-model:")}


def test_ui_daemon_runs_a_dropped_shard_on_ray_with_postgres(ray_cluster, postgres_url, isolated_env, deployment_env,
                                                              tmp_path, monkeypatch):
    import psycopg2
    import ray

    monkeypatch.setenv("CURATION_PG_URL", postgres_url)
    raw = tmp_path / "raw"  # isolated_env's $CURATION_INPUT_DIR, watched by the sensor
    raw.mkdir()
    size = {"width": 320, "height": 256, "fps": 24, "n_frames": 48}
    write_moving_pattern(raw / "pan.mp4", shift_px_per_frame=(1, 0), seed=1, **size)
    write_static(raw / "still.mp4", seed=2, **size)

    env = dict(os.environ, CURATION_MODEL_PROFILE="tiny", HF_HUB_OFFLINE="1", DAGSTER_DISABLE_TELEMETRY="1",
               PYTHONUNBUFFERED="1", CURATION_RAY_MODEL_IDLE_S=IDLE_S,
               # long: the actors must go because the run's processes release at exit, not by expiry
               CURATION_RAY_LEASE_TTL_S="600",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("CURATION_RECIPE", None)
    port = free_port()
    log = tmp_path / "ui.log"
    cmd = [str(BIN / "curation-assets"), "ui", "--data-dir", str(isolated_env), "--port", str(port),
           "--engine", "ray", "--ray-address", ray_cluster.address, "--instance", str(POSTGRES_YAML)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(port, proc, log)
    t0 = time.perf_counter()
    try:
        _wait_until_ready(server)
        ready_s = time.perf_counter() - t0
        run = _wait_for_run(server, "")  # the sensor's first tick registers the shard and requests it
        run_id = run["runId"]
        assert run["status"] == "SUCCESS", f"run {run_id} ended {run['status']}:\n{_run_errors(server, run_id)}"
        run_s = time.perf_counter() - t0 - ready_s
    finally:
        stopped = _stop_group(proc)
    print(f"ui ready in {ready_s:.1f} s, run {run_id[:8]} done {run_s:.1f} s later; ui stopped by {stopped}")
    assert "starting:" in log.read_text(errors="replace"), server.log_tail()

    # every row once, both videos, one shard
    con = duckdb.connect(str(isolated_env / "curation.duckdb"), read_only=True)
    try:
        for table in SCORE_TABLES:
            n, distinct = con.execute(f"select count(*), count(distinct video_id) from {table}").fetchone()
            assert (n, distinct) == (2, 2), table
        assert con.execute("select distinct shard from curated_videos").fetchall() == [(SHARD,)]
    finally:
        con.close()

    # the run and its events are in Postgres (asked of Postgres itself, not through Dagster)
    conn = psycopg2.connect(postgres_url.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        cur = conn.cursor()
        cur.execute("select run_id, status from runs where pipeline_name = 'curate_shards'")
        assert cur.fetchall() == [(run_id, "SUCCESS")]
        cur.execute("select count(*) from event_logs where run_id = %s and dagster_event_type = 'ASSET_MATERIALIZATION'",
                    (run_id,))
        assert cur.fetchone()[0] >= len(SCORE_TABLES)
        cur.execute("select count(*) from job_ticks where status = 'SUCCESS'")  # the sensor tick that requested it
        assert cur.fetchone()[0] >= 1
    finally:
        conn.close()

    # the steps ran on Ray: decode tasks on the cluster's nodes, models in actors there
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

    ray.init(address=ray_cluster.address, ignore_reinit_error=True, logging_level="ERROR")
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    with DagsterInstance.get() as instance:  # isolated_env's DAGSTER_HOME, now the Postgres variant
        def meta(asset: str) -> dict:
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[SHARD]), limit=1).records
            assert records and records[0].run_id == run_id, asset
            return records[0].asset_materialization.metadata

        assert set(meta("motion")["ray_nodes"].value) <= alive
        for asset in ("captions", "clip_similarity", "aesthetics", "ocr_area"):
            m = meta(asset)
            assert m["ray_node"].value in alive and m["ray_actor"].value.startswith("curation-model:"), asset

    # nobody holds the model actors now: they exit after the idle time
    t0 = time.monotonic()
    while _model_actors() and time.monotonic() < t0 + 60 + float(IDLE_S):
        time.sleep(1)
    assert not _model_actors(), "model actors still loaded after the run's processes ended"
    print(f"model actors gone {time.monotonic() - t0:.1f} s after the checks began (idle time {IDLE_S} s)")
