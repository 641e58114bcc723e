"""What users run: the console script and the dagster CLI, as real subprocesses."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from curation_assets.samples.synthetic import DEMO_EXPECTED

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _env(tmp_path, **extra):
    env = dict(os.environ, HF_HUB_OFFLINE="1", DAGSTER_HOME=str(tmp_path / "dagster_home"), **extra)
    env.pop("CURATION_RECIPE", None)
    return env


def _run(cmd, tmp_path, timeout=300, **extra):
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(tmp_path, **extra), capture_output=True, text=True, timeout=timeout)
    return proc


def test_definitions_validate(tmp_path):
    (tmp_path / "dagster_home").mkdir()
    proc = _run([str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_run_demo_corpus_then_rerun_and_recipe(tmp_path, demo_copy):
    data = tmp_path / "out"
    cmd = [str(BIN / "curation-assets"), "run", "--input", str(demo_copy / "manifest.jsonl"), "--data-dir", str(data),
           "--shard-size", "5", "--workers", "2"]
    first = _run(cmd, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert f"{len(DEMO_EXPECTED)} videos in 3 shards (3 new); 3 shards to run" in out
    for shard in ("shard-00000", "shard-00001", "shard-00002"):
        assert f"{shard}: ok" in out
    assert "motion_score<0.25" in out and "ocr_area_ratio>0.1" in out and "duplicate" in out
    assert "tiny random-weight models" in out  # the funnel says the learned scores are noise
    # the outputs' lines: the shape once, and the tiny-profile warnings under them
    assert "Training set 16x256x256, 1 epoch(s): " in out and "(16x256x256," not in out
    assert "clips were ranked by tiny random-weight models (CURATION_MODEL_PROFILE=tiny)" in out
    assert "  WARNING: Built on tiny-profile scores: " in out

    con = duckdb.connect(str(data / "curation.duckdb"), read_only=True)
    status = dict(con.execute("select status, count(*) from curated_videos group by status").fetchall())
    assert status == {"kept": 6, "rejected": 4, "failed": 3}
    assert con.execute("select count(*), count(distinct path) from curated_videos").fetchone() == (13, 13)
    con.close()
    # the runs are recorded in the persistent instance the UI reads
    assert (tmp_path / "dagster_home" / "dagster.yaml").exists()
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        runs = instance.get_runs(RunsFilter(job_name="curate_shards"))
        assert sorted(r.tags["dagster/partition"] for r in runs) == ["shard-00000", "shard-00001", "shard-00002"]
        assert all(r.is_success for r in runs)

    again = _run(cmd, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 shards to run" in again.stdout  # incremental: nothing stale
    # nothing the outputs read changed: not rebuilt (outputs/fingerprint.py), their lines repeated
    assert "Training set and score report up to date" in again.stdout
    assert "Training set 16x256x256, 1 epoch(s): " in again.stdout

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("curated_videos:\n  thresholds:\n    motion_max: 12\n")
    third = _run(cmd + ["--config", str(recipe)], tmp_path)
    assert third.returncode == 0, third.stderr
    assert "3 shards to run" in third.stdout
    assert "motion_score>12" in third.stdout
    assert "up to date" not in third.stdout  # re-judged shards: the outputs are built again
    con = duckdb.connect(str(data / "curation.duckdb"), read_only=True)
    assert con.execute("select reasons from curated_videos where path like '%too_fast.mp4'").fetchone()[0] == ["motion_score>12"]


def test_dagster_asset_materialize_writes_same_rows(tmp_path, demo_copy):
    """The UI's path (a run launched by Dagster) and the console script write the same rows."""
    data = tmp_path / "out"
    cli = _run([str(BIN / "curation-assets"), "run", "--input", str(demo_copy / "good_pan_right.mp4"),
                "--data-dir", str(data)], tmp_path)
    assert cli.returncode == 0, cli.stderr
    con = duckdb.connect(str(data / "curation.duckdb"), read_only=True)
    before = con.execute("select video_id, motion_score from motion").fetchall()
    con.close()
    # the multiprocess executor with 4 concurrent steps: resolution, the decode pass, captions,
    # aesthetics and OCR overlap, each writing to the same DuckDB file
    multiprocess = '{"execution": {"config": {"multiprocess": {"max_concurrent": 4}}}}'
    proc = _run([str(BIN / "dagster"), "asset", "materialize", "-m", "curation_assets.orchestration.definitions",
                 "--select", "group:ingest or group:frames or group:scores or group:captions or group:curation",
                 "--partition", "shard-00000", "--config-json", multiprocess], tmp_path, CURATION_DATA_DIR=str(data))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Could not set lock" not in proc.stdout + proc.stderr
    assert "multiprocess" in (proc.stdout + proc.stderr).lower()  # it really ran on that executor
    con = duckdb.connect(str(data / "curation.duckdb"), read_only=True)
    assert con.execute("select video_id, motion_score from motion").fetchall() == before
    assert con.execute("select count(*) from curated_videos").fetchone() == (1,)


def test_bad_input_and_bad_recipe_give_clear_errors(tmp_path):
    missing = _run([str(BIN / "curation-assets"), "run", "--input", str(tmp_path / "nope"), "--data-dir", str(tmp_path)], tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    (tmp_path / "v").mkdir()
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("motion:\n  sampling_fps: -1\n")
    bad = _run([str(BIN / "curation-assets"), "run", "--input", str(tmp_path / "v"), "--config", str(recipe),
                "--data-dir", str(tmp_path)], tmp_path)
    assert bad.returncode == 2 and "invalid motion config" in bad.stderr


def test_models_lists_weights_and_ocr_precision(tmp_path):
    """An empty model dir: CLIP/aesthetics/VideoBLIP missing (exit 1, with the lookup places),
    the pip-installed CRAFT detector found, and what 'auto' OCR precision means here."""
    empty = tmp_path / "models"
    empty.mkdir()
    proc = _run([str(BIN / "curation-assets"), "models", "--model-dir", str(empty)], tmp_path,
                HF_HOME=str(tmp_path / "hf"))
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "EasyOCR CRAFT detector" in out and "craft_mlt_25k.pth" in out
    assert "MISSING" in out and str(empty) in out
    from curation_assets.models.ocr import resolve_precision
    from curation_assets.models.registry import ModelSettings

    device = ModelSettings(profile="real").resolved_device()
    assert f"device: {device}; ocr_area precision 'auto' runs {resolve_precision('auto', device)} here" in out


def test_run_on_a_folder_with_a_manifest_inside_uses_its_captions(tmp_path):
    """`run --input FOLDER` where FOLDER holds manifest.jsonl: the manifest's captions are used
    and the console says so, with what happens to a video the manifest does not list."""
    import json

    from curation_assets.samples import synthetic

    folder = tmp_path / "clips"
    size = {"width": 320, "height": 256, "fps": 24, "n_frames": 24}
    synthetic.write_moving_pattern(folder / "listed.mp4", shift_px_per_frame=(0.3, 0), seed=1, **size)
    synthetic.write_moving_pattern(folder / "extra.mp4", shift_px_per_frame=(0.3, 0), seed=2, **size)
    (folder / "extra.txt").write_text("a sidecar caption for the extra clip\n")
    (folder / "manifest.jsonl").write_text(json.dumps(
        {"videos": ["listed.mp4"], "text": "<__dj__video> a caption from the manifest <|__dj__eoc|>"}) + "\n")
    data = tmp_path / "out"
    proc = _run([str(BIN / "curation-assets"), "run", "--input", str(folder), "--data-dir", str(data), "--no-outputs"],
                tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"using the manifest manifest.jsonl found in {folder}: 1 entries, captions from it" in proc.stdout
    assert (f"1 video(s) in {folder} are not in manifest.jsonl: curated as plain folder videos "
            f"(caption from a .txt beside the video, else generated); pass --input {folder / 'manifest.jsonl'}") in proc.stdout
    assert "2 videos in 1 shards (1 new)" in proc.stdout
    con = duckdb.connect(str(data / "curation.duckdb"), read_only=True)
    captions = {Path(p).name: (c, s) for p, c, s in con.execute(
        "select r.path, c.caption, c.source from video_registry r join raw_videos v using (path) "
        "join captions c using (video_id)").fetchall()}
    con.close()
    assert captions == {"listed.mp4": ("a caption from the manifest", "original"),
                        "extra.mp4": ("a sidecar caption for the extra clip", "original")}

    # a second manifest makes the folder ambiguous: refused in one line, nothing registered
    (folder / "other.csv").write_text("path,text\nextra.mp4,x\n")
    refused = _run([str(BIN / "curation-assets"), "run", "--input", str(folder), "--data-dir", str(tmp_path / "out2")],
                   tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.strip() == (f"error: {folder} holds manifests (manifest.jsonl, other.csv); "
                                      f"pass the one to use instead of the folder: --input {folder / 'manifest.jsonl'}")
    assert "videos in" not in refused.stdout
