"""The Ray engine on a real two-node Ray cluster started on this machine by the test.

Each node gets one CPU (the machine has two), shards are two or three small synthetic videos: the
decode tasks of a shard spread over both nodes, the models live in actors. Scores must equal
a one-machine run of the same inputs; a node killed mid-shard fails the shard readably and a
re-run completes it with every row exactly once.
"""

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from cluster_fixtures import OBJECT_STORE, deployment_env, ray_cluster  # noqa: F401 (fixtures)
from curation_assets.cli import main
from curation_assets.samples.synthetic import write_moving_pattern
from score_tables import SCORE_TABLES

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[1]


def _videos(folder: Path, n: int, **kwargs) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        write_moving_pattern(folder / f"clip_{i:02d}.mp4", shift_px_per_frame=(1 + i % 4, i % 3), seed=i, **kwargs)
    return folder


def _scores(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for table, column in SCORE_TABLES.items():
            n, distinct = con.execute(f"select count(*), count(distinct video_id) from {table}").fetchone()
            assert n == distinct, f"{table}: {n} rows for {distinct} videos"
            out[table] = dict(con.execute(f"select video_id, {column} from {table} order by video_id").fetchall())
        return out
    finally:
        con.close()


def _ray_nodes(shards: list[str]) -> dict[str, list[str]]:
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

    with DagsterInstance.get() as instance:
        nodes = {}
        for shard in shards:
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey("motion"), asset_partitions=[shard]), limit=1).records
            meta = records[0].asset_materialization.metadata
            nodes[shard] = meta["ray_nodes"].value
        return nodes


def test_three_shards_on_two_nodes_equal_one_machine(ray_cluster, isolated_env, deployment_env, tmp_path, capsys):
    folder = _videos(tmp_path / "videos", 6)
    common = ["run", "--input", str(folder), "--shard-size", "2", "--workers", "1", "--no-outputs"]
    assert main(common + ["--data-dir", str(tmp_path / "local")]) == 0
    code = main(common + ["--data-dir", str(tmp_path / "ray"), "--engine", "ray", "--ray-address", ray_cluster.address])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, out + captured.err  # a failed shard prints its reason
    shards = ["shard-00000", "shard-00001", "shard-00002"]
    assert all(f"{s}: ok" in out for s in shards), out

    local, on_ray = _scores(tmp_path / "local" / "curation.duckdb"), _scores(tmp_path / "ray" / "curation.duckdb")
    for table in SCORE_TABLES:
        assert len(on_ray[table]) == 6, table  # every shard's rows landed exactly once
        assert on_ray[table].keys() == local[table].keys(), table
        for vid, value in local[table].items():
            assert on_ray[table][vid] == (pytest.approx(value, rel=1e-5, abs=1e-6) if isinstance(value, float) else value)

    import ray

    nodes = _ray_nodes(shards)
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    used = {node for ids in nodes.values() for node in ids}
    print("ray nodes per shard (motion step):", nodes)
    assert used <= alive and len(used) == 2, nodes  # the decode pass ran on both nodes
    # the model actors were released at the end of the run (GPU memory freed)
    assert not [a for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("curation-model:")]


def _running_decode_task(node) -> bool:
    """A worker of this node's raylet is executing a decode task (Ray titles it ray::_on_node)."""
    import psutil
    from ray._private import ray_constants

    raylet = psutil.Process(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid)
    for child in raylet.children(recursive=True):
        try:
            if "ray::_on_node" in " ".join(child.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


def test_node_killed_mid_shard_fails_readably_then_rerun_completes(ray_cluster, isolated_env, tmp_path):
    import ray

    ray.init(address=ray_cluster.address, ignore_reinit_error=True, logging_level="ERROR")
    victim = ray_cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
    ray_cluster.wait_for_nodes()
    # long enough (seconds each) that a decode task is still running when its node dies
    folder = _videos(tmp_path / "videos", 3, width=480, height=360, n_frames=600)
    cmd = [sys.executable, "-m", "curation_assets.cli", "run", "--input", str(folder), "--data-dir",
           str(isolated_env), "--shard-size", "3", "--workers", "1", "--no-outputs", "--engine", "ray",
           "--ray-address", ray_cluster.address]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not _running_decode_task(victim):
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before a task reached the victim node"
    ray_cluster.remove_node(victim, allow_graceful=False)
    first, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, first
    assert "shard-00000: FAILED" in first and "lost on the Ray cluster" in first, first
    print("after the kill:", *[line for line in first.splitlines() if "lost on the Ray cluster" in line][:1])

    db = isolated_env / "curation.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
    partial = con.execute("select count(*) from motion").fetchone()[0] if "motion" in tables else 0
    con.close()
    assert partial == 0  # nothing of the failed step was written

    second = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 shards to run" in second.stdout  # only the failed shard, found missing
    scores = _scores(db)
    assert all(len(rows) == 3 for rows in scores.values()), scores
