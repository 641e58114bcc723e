"""The asset graph run in-process, the way the UI's job runs it, on the synthetic corpus.

One full run of the demo shard is shared by the read-only tests (OCR on CPU makes a run
cost ~20 s); tests that change thresholds re-run only `curated_videos` on a copy of the store.
"""

import shutil

import av
import polars as pl
import pytest
from dagster import AssetKey, Definitions, instance_for_test

from curation_assets.orchestration.definitions import build_definitions, defs, expected_code_versions
from curation_assets.ingest.discover import discover
from curation_assets.ingest.registry import register
from curation_assets.orchestration.jobs import CURATE_SHARDS_JOB
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.samples.synthetic import DEMO_EXPECTED, write_demo_set
from curation_assets.scorers import video_pass
from curation_assets.orchestration.staleness import shards_needing_run
from curation_assets.store import ScoreStore

SHARD = "shard-00000"
EXPECTED_STATUS = {
    "ok": ("kept", []),
    "slow_motion": ("kept", []),
    "too_fast": ("kept", []),  # no motion_max by default, as in data-juicer
    "text": ("rejected", ["ocr_area_ratio>0.1"]),
    "static": ("rejected", ["motion_score<0.25", "char_rep_ratio>0.2"]),
    "low_resolution": ("rejected", ["width<256", "height<256"]),
    "uncaptioned": ("kept", []),  # captioned by the (tiny) VideoBLIP; tiny-model bounds are skipped
    "duplicate": ("rejected", None),
    "unreadable": ("failed", None),
}


def run_shard(defs_, instance, shard=SHARD, only=None):
    job = defs_.resolve_job_def(CURATE_SHARDS_JOB)
    selection = [AssetKey(a) for a in only] if only else None
    return job.execute_in_process(partition_key=shard, instance=instance, asset_selection=selection)


@pytest.fixture(scope="module")
def curated_demo(tmp_path_factory):
    """The demo corpus curated once, with every av.open call counted (a pass-through spy)."""
    root = tmp_path_factory.mktemp("curated_demo")
    manifest = write_demo_set(root / "inputs")
    store = ScoreStore(root / "data" / "curation.duckdb")
    assert register(store, discover(manifest), shard_size=100) == [SHARD]
    opened: list[str] = []
    real_open = av.open

    def counting_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    passes_before = video_pass.decode_passes()
    with pytest.MonkeyPatch.context() as mp, instance_for_test() as instance:
        mp.setattr(av, "open", counting_open)
        instance.add_dynamic_partitions(shard_partitions.name, [SHARD])
        result = run_shard(build_definitions(recipe={}, data_dir=str(root / "data")), instance)
        checks = result.get_asset_check_evaluations()
    assert result.success
    return {"store": store, "root": root, "checks": checks, "opened": opened,
            "passes": video_pass.decode_passes() - passes_before}


@pytest.fixture
def store_copy(curated_demo, tmp_path):
    """A private copy of the curated store, for tests that re-judge with other thresholds."""
    data = tmp_path / "data"
    _copy_data_dir(curated_demo["store"].db_path.parent, data)
    return ScoreStore(data / "curation.duckdb")


def _copy_data_dir(src, dst):
    # the store is the folder (Parquet objects, frames, clips, catalog), not one file; rows
    # hold paths relative to it, so a copy works where it lands
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.lock", "dagster_home"))


def _by_name(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["path"].rsplit("/", 1)[-1]: row for row in frame.iter_rows(named=True)}


def test_definitions_load():
    Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_videos", "resolution", "motion", "sampled_frames", "captions", "caption_repetition",
            "clip_similarity", "aesthetics", "ocr_area", "curated_videos"} <= keys


def test_default_recipe_neither_splits_nor_rejects_near_duplicates(curated_demo):
    """Shot splitting and the near-duplicate check are off by default: the demo shard's rows
    are what they were before either existed (one row per file, no clip, no new reason)."""
    store = curated_demo["store"]
    assert store.read_shard("shots", SHARD).height == 0
    assert store.read_shard("near_duplicates", SHARD).height == 0
    raw = store.read_shard("raw_videos", SHARD)
    assert raw.height == len(DEMO_EXPECTED)
    assert raw.select("split_into", "clip_index", "source_path").null_count().row(0) == (raw.height,) * 3
    curated = store.read_shard("curated_videos", SHARD)
    assert set(curated["status"].to_list()) <= {"kept", "rejected", "failed"}
    assert not any(r.startswith("near_duplicate_of:") for rs in curated["reasons"].to_list() for r in rs)
    assert not (curated_demo["root"] / "data" / "clips").exists()


def test_whole_shard_verdicts_and_checks(curated_demo):
    store, checks = curated_demo["store"], curated_demo["checks"]
    assert checks and all(c.passed for c in checks), [(c.check_name, c.passed) for c in checks if not c.passed]
    assert {c.check_name for c in checks} >= {"every_video_accounted", "reasons_match_status", "motion_in_range",
                                              "ocr_area_ratio_in_range", "frames_for_every_scored_video"}
    curated = store.read_shard("curated_videos", SHARD)
    assert curated.height == len(DEMO_EXPECTED)  # every file, exactly once
    assert curated["path"].n_unique() == curated.height
    by_name = _by_name(curated)
    for name, kind in DEMO_EXPECTED.items():
        status, reasons = EXPECTED_STATUS[kind]
        row = by_name[name]
        assert row["status"] == status, (name, row)
        if reasons is not None:
            assert row["reasons"] == reasons, (name, row["reasons"])
        if status == "failed":
            assert row["reasons"] and row["reasons"][0].startswith("unreadable: ")
    assert by_name["good_pan_right_copy.mp4"]["reasons"][0].endswith("good_pan_right.mp4")

    raw = store.read_shard("raw_videos", SHARD)
    primaries = raw.filter(pl.col("error").is_null() & pl.col("duplicate_of").is_null())
    motion = store.read_shard("motion", SHARD)
    assert sorted(motion["video_id"].to_list()) == sorted(primaries["video_id"].to_list())
    assert motion["params"].str.contains('"frame_selection": "datajuicer"').all()
    assert store.read_shard("resolution", SHARD).height == primaries.height


def test_learned_scores_rows_and_profile(curated_demo):
    store = curated_demo["store"]
    raw = _by_name(store.read_shard("raw_videos", SHARD))
    vid = {name: row["video_id"] for name, row in raw.items()}
    captions = {r["video_id"]: r for r in store.read_shard("captions", SHARD).iter_rows(named=True)}
    assert captions[vid["uncaptioned.mp4"]]["source"] == "generated"
    assert captions[vid["uncaptioned.mp4"]]["caption"]
    assert captions[vid["low_res.mp4"]]["source"] == "generated"  # "" is no caption
    assert captions[vid["good_pan_right.mp4"]]["source"] == "original"
    generated = [r for r in captions.values() if r["source"] == "generated"]
    assert {(r["model"], r["profile"]) for r in generated} == {("kpyu/video-blip-opt-2.7b-ego4d", "tiny")}

    frames = store.read_shard("sampled_frames", SHARD)
    assert frames["frame_paths"].list.len().to_list() == [3] * frames.height
    for table, column in [("clip_similarity", "clip_similarity"), ("aesthetics", "aesthetics_score"),
                          ("ocr_area", "ocr_area_ratio")]:
        rows = store.read_shard(table, SHARD)
        assert rows["error"].is_null().all(), rows.filter(pl.col("error").is_not_null())
        assert rows[column].is_not_null().all()
        assert rows["frame_scores"].list.len().to_list() == [3] * rows.height
    assert set(store.read_shard("clip_similarity", SHARD)["profile"]) == {"tiny"}
    assert set(store.read_shard("ocr_area", SHARD)["profile"]) == {"real"}  # EasyOCR's weights ship in a package
    ocr = {r["video_id"]: r["ocr_area_ratio"] for r in store.read_shard("ocr_area", SHARD).iter_rows(named=True)}
    assert ocr[vid["text_overlay.mp4"]] > 0.1
    assert ocr[vid["good_pan_right.mp4"]] < 0.01
    curated = store.read_shard("curated_videos", SHARD)
    assert set(curated.filter(pl.col("status") != "failed")["model_profile"].drop_nulls()) == {"tiny"}


def test_each_video_is_decoded_once_per_run(curated_demo):
    """Probe reads the header (and one frame); one sequential pass feeds motion and frames;
    captioning, CLIP, aesthetics and OCR read the stored frames."""
    store = curated_demo["store"]
    raw = store.read_shard("raw_videos", SHARD)
    primaries = raw.filter(pl.col("error").is_null() & pl.col("duplicate_of").is_null())["path"].to_list()
    accelerated = store.read_shard("accelerated_videos", SHARD).filter(pl.col("status") == "accelerated")
    # plus one re-score pass per accelerated output file (a new video)
    assert curated_demo["passes"] == len(primaries) + accelerated.height
    for path in primaries:
        assert curated_demo["opened"].count(path) == 2, path  # probe + the single decode pass


def test_rerun_replaces_rows_without_duplicates(curated_demo, tmp_path):
    store = curated_demo["store"]
    tables = ("raw_videos", "motion", "sampled_frames", "ocr_area", "curated_videos")
    before = {t: store.read_shard(t, SHARD).height for t in tables}
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, [SHARD])
        defs_ = build_definitions(recipe={}, data_dir=str(store.db_path.parent))
        assert run_shard(defs_, instance).success
    assert {t: store.read_shard(t, SHARD).height for t in tables} == before


def test_threshold_change_marks_only_curation_stale_and_applies(store_copy):
    strict_recipe = {"curated_videos": {"thresholds": {"motion_min": 3.0}}}
    assert shards_needing_run(store_copy, expected_code_versions({})) == {}
    assert shards_needing_run(store_copy, expected_code_versions(strict_recipe)) == {SHARD: ["curated_videos"]}
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, [SHARD])
        defs_ = build_definitions(recipe=strict_recipe, data_dir=str(store_copy.db_path.parent))
        assert run_shard(defs_, instance, only=["curated_videos"]).success
    curated = _by_name(store_copy.read_shard("curated_videos", SHARD))
    assert curated["good_pan_right.mp4"]["status"] == "rejected"
    assert curated["good_pan_right.mp4"]["reasons"] == ["motion_score<3"]
    assert curated["good_diagonal.mp4"]["status"] == "kept"  # scores ~3.6
    assert shards_needing_run(store_copy, expected_code_versions(strict_recipe)) == {}


def test_model_profile_is_part_of_code_versions():
    tiny, real = expected_code_versions({}, "tiny"), expected_code_versions({}, "real")
    assert {a for a in tiny if tiny[a] != real[a]} == {"captions", "clip_similarity", "aesthetics", "ocr_area"}


def test_per_source_thresholds(store_copy):
    recipe = {"curated_videos": {"per_source": {"original": {"char_rep_ratio_max": 0.9}}}}
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, [SHARD])
        defs_ = build_definitions(recipe=recipe, data_dir=str(store_copy.db_path.parent))
        assert run_shard(defs_, instance, only=["curated_videos"]).success
    assert _by_name(store_copy.read_shard("curated_videos", SHARD))["static.mp4"]["reasons"] == ["motion_score<0.25"]


def test_tiny_bounds_apply_when_asked(store_copy):
    recipe = {"curated_videos": {"tiny_profile_bounds": "apply", "thresholds": {"aesthetics_score_min": 100.0}}}
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, [SHARD])
        defs_ = build_definitions(recipe=recipe, data_dir=str(store_copy.db_path.parent))
        assert run_shard(defs_, instance, only=["curated_videos"]).success
    scored = store_copy.read_shard("curated_videos", SHARD).filter(pl.col("aesthetics_score").is_not_null())
    assert scored.height >= 8
    for row in scored.iter_rows(named=True):
        assert row["status"] == "rejected" and "aesthetics_score<100" in row["reasons"], row


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


def test_slow_motion_clip_is_accelerated_into_the_band(curated_demo):
    store, checks = curated_demo["store"], curated_demo["checks"]
    acc = _by_name(store.read_shard("accelerated_videos", SHARD))
    row = acc["slow_motion.mp4"]
    assert row["status"] == "accelerated", row
    assert 1.0 <= row["motion_after"] <= 4.0 and row["motion_before"] < 1.0
    assert abs(row["new_duration_s"] - row["original_duration_s"] / row["factor"]) <= 1 / row["fps"]
    assert row["output_path"].startswith("accelerated/")  # relative to the store location
    assert (curated_demo["root"] / "data" / row["output_path"]).is_file()
    assert "good_pan_right.mp4" not in acc  # not slow: no row
    assert [c.passed for c in checks if c.check_name == "in_band_with_exact_duration"] == [True]


def test_training_set_and_report_from_the_store(curated_demo, tmp_path):
    import json

    from curation_assets.orchestration.jobs import BUILD_OUTPUTS_JOB

    data = tmp_path / "data"
    _copy_data_dir(curated_demo["store"].db_path.parent, data)
    store = ScoreStore(data / "curation.duckdb")
    kept = store.query("select count(*) n from curated_videos where status = 'kept'")["n"][0]
    recipe = {"lora_training_set": {"preset": "16x256x256", "max_clips": kept - 1}}
    with instance_for_test() as instance:
        job = build_definitions(recipe=recipe, data_dir=str(data)).resolve_job_def(BUILD_OUTPUTS_JOB)
        result = job.execute_in_process(instance=instance)
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())

    out = data / "training_sets" / "16x256x256"
    metadata = json.loads((out / "metadata.json").read_text())
    rows = store.query("select * from lora_training_set order by rank")
    assert len(metadata) == rows.height == kept - 1  # the budget holds exactly kept - 1 clips
    assert [m["file_path"] for m in metadata] == rows["file_path"].to_list()
    assert [m["text"] for m in metadata] == rows["caption"].to_list()
    assert {m["type"] for m in metadata} == {"video"}
    # every item says its scores came from the tiny random-weight models (this run's profile)
    assert {m["scores_profile"] for m in metadata} == {"tiny"} and rows["scores_profile"].to_list() == ["tiny"] * rows.height
    assert {m["caption_source"] for m in metadata} <= {"original", "generated"}
    jsonl = [json.loads(line) for line in (out / "data_juicer.jsonl").read_text().splitlines()]
    assert [j["videos"][0] for j in jsonl] == rows["file_path"].to_list()
    assert all(j["text"].startswith("<__dj__video> ") for j in jsonl)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["clips"] == kept - 1 and summary["pixels_used"] <= summary["pixel_budget"]
    assert summary["pixels_used"] == (kept - 1) * 16 * 256 * 256
    assert summary["scores_profile"] == "tiny" and summary["tiny_profile_clips"] == kept - 1
    assert "tiny random-weight models" in summary["warning"]
    assert all(j["scores_profile"] == "tiny" for j in jsonl)
    composite = rows["composite"].to_list()
    assert composite == sorted(composite, reverse=True)

    report = data / "reports"
    text = (report / "score_report.md").read_text()
    charts = ["funnel", "motion_score", "char_rep_ratio", "clip_similarity", "aesthetics_score", "ocr_area_ratio",
              "width", "height"]
    assert [line for line in text.splitlines() if line.startswith("![")] == [f"![{c}]({c}.png)" for c in charts]
    for chart in charts:
        assert (report / f"{chart}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert text.startswith("# Score report\n\n> **WARNING: Built on tiny-profile scores:")
    assert "| p99 | from tiny models |" in text and "| clip_similarity |" in text
    from curation_assets.orchestration.recipe import load_recipe

    suggested_text = (report / "suggested_recipe.yaml").read_text()
    assert "# WARNING: Built on tiny-profile scores" in suggested_text
    suggested = load_recipe(report / "suggested_recipe.yaml")  # a valid recipe for the next run
    thresholds = suggested["curated_videos"]["thresholds"]
    assert "motion_min" in thresholds and "ocr_area_ratio_max" in thresholds
    assert not {"clip_similarity_min", "aesthetics_score_min"} & set(thresholds)  # fitted to noise: not suggested
    # the same document as a page (charts linked beside it), which the UI links; the asset
    # page itself shows the funnel and the link (short: Dagster shows it inline, no dialog)
    page = (report / "score_report.html").read_text()
    assert page.count('<img src="') == len(charts) and all(f'src="{c}.png"' in page for c in charts)
    assert "<h1>Score report</h1>" in page and "WARNING: Built on tiny-profile scores" in page
    assert "<th>p99</th>" in page and "<script" not in page
    (materialization,) = result.asset_materializations_for_node("score_report")
    page_url = materialization.metadata["report_page"].value
    assert page_url.endswith("/report/")
    summary_md = materialization.metadata["report"].value
    assert len(summary_md) < 1000 and page_url in summary_md and "| kept |" in summary_md
    assert not [k for k in materialization.metadata if k.startswith("histogram_")]
    assert materialization.metadata["scores_profile"].value == "tiny"

    # the 512 preset needs 512x512: the demo's 320x256 clips are not eligible
    with instance_for_test() as instance:
        recipe512 = {"lora_training_set": {"preset": "16x512x512"}}
        job = build_definitions(recipe=recipe512, data_dir=str(data)).resolve_job_def(BUILD_OUTPUTS_JOB)
        assert job.execute_in_process(instance=instance).success
    assert json.loads((data / "training_sets" / "16x512x512" / "summary.json").read_text())["clips"] == 0


def test_worker_processes_give_the_same_rows(demo_copy, tmp_path, monkeypatch):
    """The shard's decode pass spread over 2 spawned workers writes what 1 process writes,
    and so do 2 workers with flow threads of their own (a budget of 8 cores, 4 videos:
    2 processes x 4 threads)."""
    names = ["good_pan_right.mp4", "good_tilt_down.mp4", "good_diagonal.mp4", "static.mp4"]
    results = {}
    expected_flow_threads = {"1": 1, "2": 1, "8": 4}
    for workers in ("1", "2", "8"):
        monkeypatch.setenv("CURATION_WORKERS", workers)
        data = tmp_path / f"w{workers}"
        store = ScoreStore(data / "curation.duckdb")
        register(store, [e for name in names for e in discover(demo_copy / name)], shard_size=10)
        with instance_for_test() as instance:
            instance.add_dynamic_partitions(shard_partitions.name, [SHARD])
            defs_ = build_definitions(recipe={}, data_dir=str(data))
            result = run_shard(defs_, instance, only=["raw_videos", "motion", "sampled_frames"])
            assert result.success
            mats = result.asset_materializations_for_node("video_pass")
        assert {m.metadata["workers"].value for m in mats if "workers" in m.metadata} == {int(workers)}
        assert {m.metadata["flow_threads"].value for m in mats if "flow_threads" in m.metadata} == {
            expected_flow_threads[workers]}
        motion = store.read_shard("motion", SHARD).sort("video_id")
        frames = store.read_shard("sampled_frames", SHARD).sort("video_id")
        results[workers] = (motion.select("video_id", "motion_score", "frame_indices").rows(),
                            frames.select("video_id", "frame_indices").rows())
    assert results["1"] == results["2"] == results["8"]


def test_image_scores_step_decodes_once_and_subsets(store_copy):
    """One image_scores step: the selected scorer alone is computed, from one decode of the frames."""
    before = store_copy.read_shard("clip_similarity", SHARD)
    frames = store_copy.read_shard("sampled_frames", SHARD).filter(pl.col("error").is_null())
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, [SHARD])
        defs_ = build_definitions(recipe={}, data_dir=str(store_copy.db_path.parent))
        result = run_shard(defs_, instance, only=["aesthetics"])
        assert result.success
        mats = result.asset_materializations_for_node("image_scores")
    assert [m.asset_key.to_user_string() for m in mats] == ["aesthetics"]
    assert mats[0].metadata["frames_decoded"].value == int(frames["frame_paths"].list.len().sum())
    assert mats[0].metadata["assets_in_step"].value == "aesthetics"
    assert store_copy.read_shard("clip_similarity", SHARD).equals(before)  # not recomputed


def test_missing_weights_fail_only_their_image_asset(store_copy, empty_hf_home, monkeypatch):
    """Real profile without CLIP weights: clip_similarity and aesthetics fail (no rows rewritten),
    ocr_area (real weights in every profile) is still written, and the step reports the failure."""
    monkeypatch.delenv("CURATION_MODEL_DIR", raising=False)
    ocr_before = store_copy.read_shard("ocr_area", SHARD)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, [SHARD])
        defs_ = build_definitions(recipe={}, data_dir=str(store_copy.db_path.parent), profile="real")
        job = defs_.resolve_job_def(CURATE_SHARDS_JOB)
        result = job.execute_in_process(partition_key=SHARD, instance=instance, raise_on_error=False,
                                        asset_selection=[AssetKey(a) for a in ("clip_similarity", "aesthetics", "ocr_area")])
        assert not result.success
        written = [m.asset_key.to_user_string() for m in result.asset_materializations_for_node("image_scores")]
    assert written == ["ocr_area"]
    after = store_copy.read_shard("ocr_area", SHARD)
    assert after.select("video_id", "ocr_area_ratio").sort("video_id").equals(
        ocr_before.select("video_id", "ocr_area_ratio").sort("video_id"))
