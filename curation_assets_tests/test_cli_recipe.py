"""One recipe per data dir, scorer switches and the weights pre-flight, as a user meets them:
the real console script (and the dagster CLI for a UI-style launch) in subprocesses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from curation_assets.samples.synthetic import write_moving_pattern

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MISSING = ("open_clip ViT-B-32/openai", "open_clip ViT-L-14/openai", "sac+logos+ava1-l14-linearMSE",
           "kpyu/video-blip-opt-2.7b-ego4d")


@pytest.fixture
def two_clips(tmp_path) -> Path:
    """A captioned and an uncaptioned clip, both large enough and moving (motion ~3)."""
    folder = tmp_path / "clips"
    size = {"width": 320, "height": 256, "fps": 24, "n_frames": 48}
    write_moving_pattern(folder / "captioned.mp4", shift_px_per_frame=(0.25, 0), seed=1, **size)
    write_moving_pattern(folder / "uncaptioned.mp4", shift_px_per_frame=(0, 0.3), seed=2, **size)
    (folder / "manifest.jsonl").write_text(
        json.dumps({"videos": ["captioned.mp4"], "text": "<__dj__video> a textured wall slides right <|__dj__eoc|>"})
        + "\n" + json.dumps({"videos": ["uncaptioned.mp4"]}) + "\n")
    return folder


def _env(tmp_path, profile=None, **extra):
    """No weights anywhere: an empty model dir and an empty Hugging Face cache, offline."""
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "hf").mkdir(exist_ok=True)
    env = dict(os.environ)
    for name in ("CURATION_RECIPE", "CURATION_MODEL_PROFILE", "DAGSTER_HOME", "HF_HUB_CACHE", "CURATION_DATA_DIR"):
        env.pop(name, None)
    env.update(HF_HUB_OFFLINE="1", CURATION_MODEL_DIR=str(tmp_path / "models"), HF_HOME=str(tmp_path / "hf"), **extra)
    if profile:
        env["CURATION_MODEL_PROFILE"] = profile
    return env


def _cli(args, tmp_path, profile=None, timeout=600, **extra):
    return subprocess.run([str(BIN / "curation-assets"), *args], cwd=REPO_ROOT, env=_env(tmp_path, profile, **extra),
                          capture_output=True, text=True, timeout=timeout)


def test_run_without_weights_fails_at_once_naming_every_missing_weight(tmp_path, two_clips):
    data = tmp_path / "data"
    proc = _cli(["run", "--input", str(two_clips / "manifest.jsonl"), "--data-dir", str(data)], tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out and "Stack Trace" not in out
    assert proc.stderr.count("error:") == 1  # one message
    assert "missing model weights: 4 " in proc.stderr
    for name in MISSING:
        assert name in proc.stderr
    for hint in ("curation-assets models", "--model-profile tiny", "recipes/no_weights.yaml", "Nothing was run."):
        assert hint in proc.stderr
    assert "model profile: real (default)" in proc.stdout
    # nothing registered, no shard started, no recipe stored
    assert not (data / "curation.duckdb").exists() and not (data / "recipe.yaml").exists()
    assert len(proc.stderr.splitlines()) < 12


@pytest.mark.slow
def test_no_weights_recipe_then_status_and_the_ui_code_location_agree(tmp_path, two_clips):
    data = tmp_path / "data"
    manifest = str(two_clips / "manifest.jsonl")
    run = _cli(["run", "--input", manifest, "--data-dir", str(data), "--config", "recipes/no_weights.yaml"], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert "scorers off (switched off by the recipe; their thresholds not applied): aesthetics, captions, " \
           "clip_similarity" in run.stdout
    assert "caption_missing" in run.stdout  # no captioner: the uncaptioned clip cannot be kept
    con = duckdb.connect(str(data / "curation.duckdb"), read_only=True)
    rows = dict(con.execute("select path like '%uncaptioned.mp4', status from curated_videos").fetchall())
    assert rows == {False: "kept", True: "rejected"}
    assert con.execute("select distinct scorers_off from curated_videos").fetchall() == [
        (["captions", "clip_similarity", "aesthetics"],)]
    assert con.execute("select count(*) from aesthetics").fetchone() == (0,)  # switched off: no rows, no model
    assert con.execute("select count(*) from ocr_area").fetchone() == (2,)  # real OCR still filters
    thresholds = json.loads(con.execute("select thresholds from curated_videos limit 1").fetchone()[0])
    assert thresholds["aesthetics_score_min"] is None and thresholds["ocr_area_ratio_max"] == 0.1
    con.close()
    hash_ = run.stdout.split("hash ")[1].split()[0]
    assert (data / "recipe.yaml").exists() and f"recipe hash {hash_}" in (data / "recipe.yaml").read_text()

    # status without --config compares against the data dir's recipe and profile, and says so
    status = _cli(["status", "--data-dir", str(data)], tmp_path)
    assert status.returncode == 0, status.stderr
    assert f"recipe: {data / 'recipe.yaml'} (stored by the run of" in status.stdout
    assert f"no_weights.yaml); hash {hash_}" in status.stdout
    assert "model profile: real (stored with the data" in status.stdout
    assert "0 shards missing or stale" in status.stdout
    assert "videos in   2" in status.stdout

    # the UI's code location (dagster dev with CURATION_DATA_DIR, nothing else) builds the same
    # code versions and launchpad defaults from the stored recipe
    probe = ("from curation_assets.orchestration.definitions import defs\n"
             "from dagster import AssetKey\n"
             "graph = defs.resolve_asset_graph()\n"
             "print({k: graph.get(AssetKey(k)).code_version for k in ('aesthetics', 'curated_videos', 'captions')})\n")
    ui_env = _env(tmp_path, CURATION_DATA_DIR=str(data))
    code = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, env=ui_env, capture_output=True, text=True,
                          timeout=300)
    assert code.returncode == 0, code.stderr
    versions = eval(code.stdout.strip().splitlines()[-1])  # noqa: S307 - our own print of a dict of str
    con = duckdb.connect(str(data / "curation.duckdb"), read_only=True)
    written = dict(con.execute("select asset, code_version from shard_writes where asset in "
                               "('aesthetics', 'curated_videos', 'captions')").fetchall())
    con.close()
    assert versions == written and versions["aesthetics"].endswith("-off")

    # a changed recipe says what changed and what becomes stale, then becomes the data dir's
    changed = tmp_path / "changed.yaml"
    changed.write_text((REPO_ROOT / "recipes" / "no_weights.yaml").read_text().replace("motion_max: 12.0", "motion_max: 2.0"))
    again = _cli(["run", "--input", manifest, "--data-dir", str(data), "--config", str(changed), "--no-outputs"],
                 tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"recipe changed since the last run on this data dir ({data / 'recipe.yaml'}, hash {hash_}):" in again.stdout
    assert "curated_videos.thresholds.motion_max: 12.0 -> 2.0" in again.stdout
    assert "stale now on every shard: curated_videos" in again.stdout
    assert "1 shards to run" in again.stdout and "motion_score>2" in again.stdout
    status = _cli(["status", "--data-dir", str(data)], tmp_path)
    assert "changed.yaml" in status.stdout and "0 shards missing or stale" in status.stdout


@pytest.mark.slow
def test_ui_launch_without_weights_fails_in_its_first_step_and_status_says_so(tmp_path, two_clips):
    """A run launched through Dagster (as the UI does) fails in raw_videos, before the decode
    pass, with the pre-flight message; status then reports the shard as failed, with the reason."""
    from curation_assets.ingest.discover import discover
    from curation_assets.ingest.registry import register
    from curation_assets.store import ScoreStore

    data = tmp_path / "data"
    store = ScoreStore(data / "curation.duckdb")
    register(store, discover(str(two_clips / "manifest.jsonl")), 64)
    home = tmp_path / "dagster_home"
    home.mkdir()
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:  # what the sensor does for new shards
        instance.add_dynamic_partitions("shards", ["shard-00000"])
    proc = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "curation_assets.orchestration.definitions",
         "--select", "group:ingest or group:frames or group:scores or group:captions or group:curation",
         "--partition", "shard-00000"],
        cwd=REPO_ROOT, env=_env(tmp_path, CURATION_DATA_DIR=str(data), DAGSTER_HOME=str(home)),
        capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "missing model weights: 4 " in out
    assert 'Execution of step "raw_videos" failed' in out or "raw_videos" in out
    assert "motion" not in store.tables()  # it failed before the decode pass

    status = _cli(["status", "--data-dir", str(data)], tmp_path, DAGSTER_HOME=str(home))
    assert status.returncode == 0, status.stderr
    assert "videos in   2" in status.stdout
    assert "not curated 2 (their shard's run FAILED)" in status.stdout
    assert "shard-00000 (2 videos): step raw_videos failed: missing model weights: 4" in status.stdout
    assert "shard not run yet" not in status.stdout
