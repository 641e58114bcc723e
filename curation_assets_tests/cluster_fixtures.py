"""Fixtures for the cluster tests: a two-node local Ray cluster and a throwaway Postgres.

Import the ones a test module needs (`from cluster_fixtures import ray_cluster`); each is
started by the test and stopped after it, so nothing is left running.
"""

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
OBJECT_STORE = 80 * 1024 * 1024  # tiny frames; Ray's default would reserve 30% of RAM per node
DEPLOYMENT_VARS = ("CURATION_ENGINE", "CURATION_RAY_ADDRESS", "CURATION_INSTANCE", "CURATION_DEPLOYMENT",
                   "CURATION_RAY_TASK_RETRIES", "CURATION_RAY_HOLDER", "CURATION_RAY_LEASE_TTL_S",
                   "CURATION_RAY_MODEL_IDLE_S")


@pytest.fixture(scope="module")
def ray_cluster():
    """Two Ray nodes on this machine, one CPU each (the machine has two)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": 1, "object_store_memory": OBJECT_STORE, "include_dashboard": False})
    cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE)
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def deployment_env(monkeypatch):
    """main() exports the deployment to os.environ: restore it after each test."""
    for name in DEPLOYMENT_VARS:
        monkeypatch.setenv(name, "")  # recorded, so whatever main() exports is undone after the test
        monkeypatch.delenv(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # the server refuses to run as root; CI runs as root, a developer usually not
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture
def postgres_url():
    """A throwaway Postgres (Debian's initdb + pg_ctl in a temp dir) on 127.0.0.1; its URL."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"{PG_BIN}/initdb missing: run scripts/install_postgres.sh (CI does)")
    root = Path(tempfile.mkdtemp(prefix="curation-pg-"))  # not under pytest's root-only tmp dir
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()
    subprocess.run(_as_postgres_user([str(PG_BIN / "initdb"), "-D", str(data), "-U", "curation", "--auth=trust",
                                      "-E", "UTF8", "--no-sync"]), check=True, capture_output=True)
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"),
                                      "-w", "-t", "60", "start"]), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://curation@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
