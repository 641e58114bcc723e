"""`--store s3://bucket/prefix` end to end against a real S3 API: moto's S3 server, started on a
free local port by this module (no AWS account, no network). The CLI runs as a subprocess
that reaches the server through the standard `AWS_ENDPOINT_URL`, as a user's MinIO, Ceph or
R2 endpoint would be configured."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from curation_assets.store import StoreLocation, StoreLocationError
from score_tables import SCORE_TABLES as BASE_SCORE_TABLES

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BUCKET = "curation-test"
INPUTS = ("good_pan_right.mp4", "slow_motion.mp4", "zero_byte.mp4")  # kept, kept + accelerated, failed
SCORE_TABLES = {**BASE_SCORE_TABLES, "accelerated_videos": "output_path", "sampled_frames": "frame_paths"}


def _aws_env(endpoint: str, tmp: Path) -> dict:
    """Fake credentials and the endpoint; no ~/.aws file or instance metadata is consulted."""
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(tmp / "no-aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-creds")}


@pytest.fixture
def s3(s3_endpoint, tmp_path, monkeypatch):
    """The endpoint's environment in this process (and the CLI's) and an s3fs with an empty bucket."""
    import fsspec

    env = _aws_env(s3_endpoint, tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("CURATION_STORE", raising=False)
    fs = fsspec.filesystem("s3", skip_instance_cache=True, use_listings_cache=False)
    if fs.exists(BUCKET):
        fs.rm(BUCKET, recursive=True)
    fs.mkdir(BUCKET)
    return fs


def _cli(args: list[str], tmp_path: Path, timeout: int = 600, **extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", DAGSTER_HOME=str(tmp_path / "dagster_home"), **extra)
    env.pop("CURATION_RECIPE", None)
    return subprocess.run([str(BIN / "curation-assets"), *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _scores(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for table, column in SCORE_TABLES.items():
            key = "path" if table == "curated_videos" else "video_id"  # a failed file has no video_id
            n, distinct = con.execute(f"select count(*), count(distinct {key}) from {table}").fetchone()
            assert n == distinct, f"{table}: {n} rows for {distinct} videos"
            out[table] = dict(con.execute(f"select {key}, {column} from {table} order by {key}").fetchall())
        return out
    finally:
        con.close()


@pytest.mark.slow
def test_cli_run_on_an_s3_store_equals_a_local_folder_run(s3, demo_corpus, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in INPUTS:
        shutil.copy(demo_corpus / name, inputs / name)
    data = tmp_path / "data"
    url = f"s3://{BUCKET}/curation/prod"
    # two shards on two worker processes: the CLI process then reads what other processes wrote
    common = ["--input", str(inputs), "--model-profile", "tiny", "--shard-size", "2", "--workers", "2"]
    cmd = ["run", *common, "--data-dir", str(data), "--store", url]

    first = _cli(cmd, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "3 videos in 2 shards (2 new); 2 shards to run" in first.stdout
    assert "shard-00000: ok" in first.stdout and "shard-00001: ok" in first.stdout
    # the funnel and the outputs read what the shard's steps had just written to the bucket
    assert "kept        2" in first.stdout and "failed      1" in first.stdout, first.stdout

    # scores, frames and clips are objects in the bucket, nothing of them in the data dir
    prefix = f"{BUCKET}/curation/prod"
    # one versioned object per (table, shard): <shard>@<version>@<rows>@<code version>.parquet
    for table in (*SCORE_TABLES, "raw_videos", "video_registry"):
        assert len(s3.glob(f"{prefix}/tables/{table}/shard-00000@*.parquet")) == 1, table
    for table in ("raw_videos", "video_registry", "curated_videos"):  # shard-00001: the empty file
        assert len(s3.glob(f"{prefix}/tables/{table}/shard-00001@*.parquet")) == 1, table
    assert not any(s3.find(f"{prefix}/.write-probe"))  # the start-up probe was removed
    assert not (data / "tables").exists() and not (data / "frames").exists() and not (data / "accelerated").exists()
    con = duckdb.connect(str(data / "curation.duckdb"), read_only=True)
    try:
        # the README's queries, in a plain DuckDB session on the catalog file
        status = dict(con.execute("select status, count(*) from curated_videos group by status").fetchall())
        assert status == {"kept": 2, "failed": 1}
        frame_keys = [k for (keys,) in con.execute("select frame_paths from sampled_frames").fetchall() for k in keys]
        clip_keys = [k for (k,) in con.execute("select output_path from accelerated_videos "
                                                "where status = 'accelerated'").fetchall()]
        training = con.execute("select file_path from lora_training_set where accelerated").fetchall()
        writes = dict(con.execute("select asset, sum(rows) from shard_writes group by asset").fetchall())
    finally:
        con.close()
    # paths in rows are keys relative to the location, and each names an object in the bucket
    assert frame_keys and all(k.startswith("frames/") and s3.isfile(f"{prefix}/{k}") for k in frame_keys)
    assert len(clip_keys) == 1 and clip_keys[0].startswith("accelerated/") and s3.isfile(f"{prefix}/{clip_keys[0]}")
    assert training == [(f"{url}/{clip_keys[0]}",)]  # the training set names the clip where it lives
    assert writes["raw_videos"] == 3 and writes["curated_videos"] == 3 and writes["motion"] == 2

    # a re-run is a no-op: nothing stale, no shard object rewritten
    before = {p: s3.info(p)["ETag"] for p in s3.find(f"{prefix}/tables") if "/shard-" in p}
    again = _cli(cmd, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 videos in 2 shards (0 new); 0 shards to run" in again.stdout
    after = {p: s3.info(p)["ETag"] for p in s3.find(f"{prefix}/tables") if "/shard-" in p}
    assert after == before and len(s3.glob(f"{prefix}/tables/motion/shard-00000@*.parquet")) == 1

    # the same inputs on the one-machine default (a local folder) give the same scores
    local = _cli(["run", *common, "--data-dir", str(tmp_path / "local"), "--no-outputs"], tmp_path)
    assert local.returncode == 0, local.stdout + local.stderr
    assert len(list((tmp_path / "local" / "tables" / "motion").glob("shard-00000@*.parquet"))) == 1
    assert _scores(data / "curation.duckdb") == _scores(tmp_path / "local" / "curation.duckdb")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("case", ["no_bucket", "unreachable"])
def test_bad_s3_store_fails_at_start_up_in_one_line(s3, tmp_path, monkeypatch, case):
    if case == "no_bucket":
        url, expected, extra = "s3://no-such-bucket/prefix", "does not exist: no bucket 'no-such-bucket'", {}
    else:  # nothing listens there: refused at once, and the probe does not retry for minutes
        endpoint = f"http://127.0.0.1:{_closed_port()}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        url, expected, extra = f"s3://{BUCKET}/prefix", f"cannot be reached at {endpoint}", {"AWS_ENDPOINT_URL": endpoint}
    with pytest.raises(StoreLocationError, match=expected):
        StoreLocation(url).check()
    data = tmp_path / "data"
    for args, setting in ((["run", "--input", str(tmp_path), "--data-dir", str(data), "--store", url], "--store"),
                          (["status", "--data-dir", str(data)], "CURATION_STORE")):
        env = dict(extra, CURATION_STORE=url) if setting == "CURATION_STORE" else extra
        out = _cli(args, tmp_path, timeout=120, **env)
        assert out.returncode == 2, out.stdout + out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {setting}: store location '{url}'"), lines
        assert expected in lines[0], lines
    # nothing written: no catalog, no objects (the bucket that exists is still empty)
    assert not (data / "curation.duckdb").exists() and not (data / "tables").exists()
    assert s3.find(BUCKET) == []
