"""Shot splitting: detected cuts against known ones, clip planning, frame-exact cuts, bad
input (a decode failure part-way, a cut ffmpeg cannot make), and the graph with splitting on
and off."""

from pathlib import Path

import av
import numpy as np
import polars as pl
import pytest
from dagster import instance_for_test

from curation_assets.ingest.discover import discover
from curation_assets.ingest.registry import register, shard_members
from curation_assets.orchestration.definitions import build_definitions
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import RecipeError, normalize_recipe
from curation_assets.samples.synthetic import (
    concatenate_clips, write_moving_pattern, write_scene_sequence, write_scene_sequence_failing,
)
from curation_assets.scorers.shots import (
    ClipPlan, ShotParams, SplitJob, clip_path, cut_clip, detect_shots, plan_clips, split_source,
)
from curation_assets.store import ScoreStore
from curation_assets_tests.test_assets import run_shard

SHARD = "shard-00000"
REAL_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_videos"
SCENES = [40, 75, 52, 90, 33, 61, 47]  # frames; every scene longer than the detector's 15-frame minimum


def _matched(true_cuts: list[int], found: list[int], tolerance: int = 1) -> tuple[list[int], list[int]]:
    """(true cuts missed, found cuts matching no true cut)."""
    missed = [c for c in true_cuts if not any(abs(c - f) <= tolerance for f in found)]
    extra = [f for f in found if not any(abs(c - f) <= tolerance for c in true_cuts)]
    return missed, extra


def _frames(path, indices=None) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="gray").astype(np.float32) for f in container.decode(video=0)]
    return frames if indices is None else [frames[i] for i in indices]


@pytest.mark.parametrize("detector", ["content", "adaptive"])
def test_synthetic_scene_cuts_found_within_one_frame(tmp_path, detector):
    path, true_cuts = write_scene_sequence(tmp_path / "scenes.mp4", SCENES, width=160, height=128, fps=24)
    det = detect_shots(path, ShotParams(detector=detector))
    assert det.error is None and det.frames_decoded == sum(SCENES)
    missed, extra = _matched(true_cuts, det.cuts)
    assert not missed and not extra, (true_cuts, det.cuts)


def test_threshold_is_honoured(tmp_path):
    path, _ = write_scene_sequence(tmp_path / "scenes.mp4", SCENES[:3], width=160, height=128, fps=24)
    # no frame-to-frame change reaches 255 (the score's ceiling): nothing is a cut
    assert detect_shots(path, ShotParams(threshold=255.0)).cuts == []


def test_plan_clips_drops_short_shots_and_splits_long_ones():
    # 10 fps: shots of 15 frames (1.5 s, dropped), 30 (kept whole), 250 (25 s -> 2 pieces of 12.5 s)
    plans, dropped = plan_clips([15, 45], 295, fps=10, min_clip_s=2, max_clip_s=20)
    assert dropped == 1
    assert [(p.start_frame, p.end_frame, p.shot) for p in plans] == [(15, 45, 1), (45, 170, 2), (170, 295, 2)]
    # zero cuts: one clip, or equal pieces no longer than the maximum
    assert [(p.start_frame, p.end_frame) for p in plan_clips([], 150, 10, 2, 20)[0]] == [(0, 150)]
    pieces = plan_clips([], 1000, 10, 2, 20)[0]
    assert len(pieces) == 5 and all(p.end_frame - p.start_frame == 200 for p in pieces)
    assert pieces[0].start_frame == 0 and pieces[-1].end_frame == 1000


def test_recipe_rejects_a_maximum_below_twice_the_minimum():
    with pytest.raises(RecipeError, match="max_clip_s"):
        normalize_recipe({"shots": {"enabled": True, "min_clip_s": 5, "max_clip_s": 8}})


def test_cuts_are_frame_exact_by_copy_and_by_reencode(tmp_path):
    path, true_cuts = write_scene_sequence(tmp_path / "scenes.mp4", SCENES[:3], width=160, height=128, fps=24)
    det = detect_shots(path)
    source = _frames(path)
    # a cut on a detected shot boundary starts on a keyframe (x264 puts one at each scene change)
    start, end = true_cuts[0], true_cuts[1]
    assert start in det.keyframes
    copy = tmp_path / "copy.mp4"
    assert cut_clip(path, copy, start, end, det.fps, det.keyframes) == "copy"
    # a piece starting mid-GOP must be re-encoded
    mid = start + 11
    assert mid not in det.keyframes
    reenc = tmp_path / "reencode.mp4"
    assert cut_clip(path, reenc, mid, end, det.fps, det.keyframes) == "reencode"
    for clip, first in ((copy, start), (reenc, mid)):
        frames = _frames(clip)
        assert len(frames) == end - first
        # the clip's first and last frames are the source's frames `first` and end-1, not their neighbours
        for got, want in ((frames[0], first), (frames[-1], end - 1)):
            errors = {i: float(np.abs(got - source[i]).mean()) for i in (want - 1, want, want + 1)}
            assert min(errors, key=errors.get) == want, errors


def test_a_cut_ffmpeg_cannot_make_fails_with_the_reason(tmp_path):
    path, _ = write_scene_sequence(tmp_path / "scenes.mp4", SCENES[:2], width=160, height=128, fps=24)
    n = sum(SCENES[:2])
    with pytest.raises(RuntimeError, match=r"ffmpeg wrote \d+ of the 20 frames"):
        cut_clip(path, tmp_path / "past_end.mp4", n + 40, n + 60, 24.0, [])
    assert not list(tmp_path.glob("past_end*"))  # nothing half-written left behind


def test_decode_failure_part_way_keeps_the_clips_before_it(tmp_path):
    path, cuts_before = write_scene_sequence_failing(tmp_path / "broken.mkv", [60, 60, 60, 60], fail_at=150)
    det = detect_shots(path)
    assert det.frames_decoded == 150 and "decode failed after 150 frames" in det.error
    assert _matched(cuts_before, det.cuts) == ([], [])
    out = split_source(SplitJob(str(path), "ab" * 32, str(tmp_path / "clips"), ShotParams()))
    spans = [(c["plan"].start_frame, c["plan"].end_frame) for c in out["clips"]]
    # the shot the failure interrupts (120-150, minus the second before the failure) is too short to keep
    assert spans == [(0, 60), (60, 120)] and out["dropped_short"] == 1
    assert all(c["error"] is None and Path(c["path"]).is_file() for c in out["clips"])


def _split_run(tmp_path, recipe, inputs):
    data = tmp_path / "data"
    store = ScoreStore(data / "curation.duckdb")
    register(store, [e for i in inputs for e in discover(i)], shard_size=10)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, [SHARD])
        defs_ = build_definitions(recipe=recipe, data_dir=str(data))
        result = run_shard(defs_, instance, only=["shots", "raw_videos"])
    assert result.success
    return store, data, result


def test_graph_registers_each_clip_with_lineage(tmp_path):
    """Splitting on: the long source becomes clips in raw_videos (lineage columns, scored
    instead of the source); a short file and a failing cut go their own way."""
    inputs = tmp_path / "in"
    film, true_cuts = write_scene_sequence(inputs / "film.mp4", [60, 30, 130, 70], width=160, height=128, fps=24)
    short = write_moving_pattern(inputs / "short.mp4", n_frames=48)
    recipe = {"shots": {"enabled": True, "min_clip_s": 2, "max_clip_s": 4, "split_longer_than_s": 4}}
    # a directory where clip 1's file must go: that clip fails with the reason, the others go on
    plans, _ = plan_clips(true_cuts, 290, 24.0, 2, 4)
    from curation_assets.scorers.hashing import content_hash

    blocked = clip_path(tmp_path / "data" / "clips", content_hash(film), plans[1])
    (blocked / "x").mkdir(parents=True)
    store, data, result = _split_run(tmp_path, recipe, [film, short])

    shots = store.read_shard("shots", SHARD)
    source = shots.filter(pl.col("kind") == "source").row(0, named=True)
    assert source["cuts"] == true_cuts and source["error"] is None and source["dropped_short"] == 1
    raw = store.read_shard("raw_videos", SHARD).sort("seq", "clip_index", nulls_last=False)
    film_row = raw.filter(pl.col("path") == str(film)).row(0, named=True)
    assert film_row["split_into"] == len(plans) - 1 and film_row["video_id"]
    clips = raw.filter(pl.col("source_path") == str(film))
    assert clips["clip_index"].to_list() == list(range(len(plans)))
    assert [(r["start_frame"], r["end_frame"]) for r in clips.iter_rows(named=True)] == [
        (p.start_frame, p.end_frame) for p in plans]
    assert set(clips["source_video_id"].to_list()) == {film_row["video_id"]}
    failed = clips.filter(pl.col("error").is_not_null())
    assert failed["clip_index"].to_list() == [1] and failed["error"][0].startswith("cut failed: ")
    good = clips.filter(pl.col("error").is_null())
    assert (good["frame_count"] == good["end_frame"] - good["start_frame"]).all()
    assert (good["start_s"] - good["start_frame"] / 24.0).abs().max() < 1e-9
    # the short file is scored whole, as without splitting
    assert raw.filter(pl.col("path") == str(short))["split_into"].to_list() == [None]
    mats = {m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("shots")}
    assert "film.mp4" in mats["shots"]["clips_by_source"].value  # the UI's table of clips per source
    # registry rows are the input files only: clips live in raw_videos with their lineage
    assert shard_members(store, SHARD)["path"].to_list() == [str(film), str(short)]


def test_splitting_off_by_default_leaves_rows_as_before(tmp_path):
    inputs = tmp_path / "in"
    film, _ = write_scene_sequence(inputs / "film.mp4", [60, 30, 130, 70], width=160, height=128, fps=24)
    store, data, _ = _split_run(tmp_path, {}, [film])
    assert store.read_shard("shots", SHARD).height == 0
    raw = store.read_shard("raw_videos", SHARD)
    assert raw["path"].to_list() == [str(film)] and raw["split_into"].to_list() == [None]
    assert not (data / "clips").exists()


@pytest.mark.slow
def test_real_clips_concatenated_joins_found(tmp_path):
    clips = sorted(REAL_VIDEOS.glob("video*.mp4"))
    if len(clips) != 5:
        pytest.skip(f"real clips not available at {REAL_VIDEOS}")
    path, joins = concatenate_clips(clips, tmp_path / "real.mp4")
    for detector in ("content", "adaptive"):
        det = detect_shots(path, ShotParams(detector=detector))
        missed, extra = _matched(joins, det.cuts)
        assert not missed, (detector, joins, det.cuts)
        # cuts inside the clips are the clips' own edits (video1: title card, then scenes);
        # the known ones are listed so a new false cut fails the test
        assert extra == [144, 237], (detector, extra)


_SPLIT_CHILD = """
import json, resource, sys
from curation_assets.scorers.shots import ShotParams, SplitJob, split_source
out = split_source(SplitJob(sys.argv[1], "cd" * 32, sys.argv[2], ShotParams()))
print(json.dumps({"rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "clips": len(out["clips"]),
                  "failed": sum(1 for c in out["clips"] if c["error"]), "frames": out["detection"].frames_decoded}))
"""


@pytest.mark.slow
def test_memory_stays_flat_on_a_30_minute_video(tmp_path):
    """The split step (the function the shots asset runs per source) on 3- and 30-minute
    videos (64x48, 10 fps, scenes of 25-35 s): the peak memory of the 30-minute run stays
    within 40 MB of the 3-minute one (it would grow by ~1.7 GB if its frames were held)."""
    import json
    import subprocess
    import sys

    results = {}
    for minutes in (3, 30):
        lengths = [250 + (i * 37) % 100 for i in range(minutes * 2)]
        lengths[-1] += minutes * 600 - sum(lengths)
        path, cuts = write_scene_sequence(tmp_path / f"long{minutes}.mp4", lengths, width=64, height=48, fps=10)
        proc = subprocess.run([sys.executable, "-c", _SPLIT_CHILD, str(path), str(tmp_path / f"clips{minutes}")],
                              capture_output=True, text=True, check=True,
                              env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        results[minutes] = json.loads(proc.stdout.strip().splitlines()[-1])
        assert results[minutes]["frames"] == minutes * 600 and results[minutes]["failed"] == 0
        # every scene of 25-35 s becomes 2 pieces of <= 20 s (at 64x48 the content detector
        # misses one of the 59 cuts of the 30-minute video: that 61-s shot makes 4 pieces)
        assert 2 * len(lengths) <= results[minutes]["clips"] <= 2 * len(lengths) + 2
    assert results[30]["rss_kb"] < results[3]["rss_kb"] + 40 * 1024, results
