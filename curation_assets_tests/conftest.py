import os
import shutil
from pathlib import Path

import pytest

# A missing model must fail at once, not after ~200 s of hub retries.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
# No model weights can be downloaded here: the learned scorers run their tiny random-weight
# models (same classes, same loaders); OCR's detector is real in every profile.
os.environ["CURATION_MODEL_PROFILE"] = "tiny"
# One process per shard step by default, so in-process spies see every decode; the
# worker-pool path has its own test.
os.environ.setdefault("CURATION_WORKERS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_VIDEOS = REPO_ROOT.parent / "shared" / "data" / "real_videos"


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    """The synthetic demo folder (manifest.jsonl inside); never modify it, copy it."""
    from curation_assets.samples.synthetic import write_demo_set

    return write_demo_set(tmp_path_factory.mktemp("demo_corpus")).parent


@pytest.fixture
def demo_copy(demo_corpus, tmp_path) -> Path:
    target = tmp_path / "inputs"
    shutil.copytree(demo_corpus, target)
    return target


@pytest.fixture
def isolated_env(tmp_path, monkeypatch) -> Path:
    """Data dir, input dir and Dagster home inside tmp_path, for code that reads the env."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("CURATION_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CURATION_INPUT_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("CURATION_RECIPE", raising=False)
    (tmp_path / "dagster_home").mkdir()
    return data_dir


@pytest.fixture
def empty_hf_home(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache, so no weights on this machine can leak into a test."""
    home = tmp_path / "hf_home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    return home


@pytest.fixture(scope="session")
def s3_endpoint():
    """One S3 server (moto) for the whole session: each test empties its own bucket."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
