"""image_scores takes a shard's frames in bounded chunks: same rows as the whole shard at once,
and no more than two chunks of frames resident (the one scored, the next one decoding)."""

from __future__ import annotations

import os
import threading

import numpy as np
import polars as pl
import pytest
from dagster import AssetKey, instance_for_test

from curation_assets.frames.chunks import CHUNK_MB_ENV, FrameChunks, chunk_budget_mb, plan_chunks, video_frame_bytes
from curation_assets.frames.files import save_frames
from curation_assets.orchestration.assets.image_scores import frame_scores
from curation_assets.orchestration.assets.shard_io import load_videos_frames, shard_frames
from curation_assets.orchestration.definitions import build_definitions
from curation_assets.orchestration.jobs import CURATE_SHARDS_JOB
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.store import ScoreStore

SHARD = "shard-00000"
W, H = 96, 64  # one frame: 18 KiB decoded
FRAME_BYTES = W * H * 3
FRAMES_SCHEMA = {"video_id": pl.Utf8, "frame_indices": pl.List(pl.Int64), "frame_paths": pl.List(pl.Utf8),
                 "width": pl.Int64, "height": pl.Int64, "error": pl.Utf8}


def _frame(seed: int, text: bool) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    img = np.repeat(np.linspace(0, 255, W, dtype=np.uint8)[None, :, None], H, axis=0).repeat(3, axis=2)
    img = cv2.GaussianBlur((img * 0.5 + rng.integers(0, 120, (H, W, 3)) * 0.5).astype(np.uint8), (5, 5), 0)
    if text:  # something for the OCR detector to find, so its ratios are not all zero
        cv2.putText(img, "SALE 42", (4, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
    return img


@pytest.fixture
def shard_store(tmp_path):
    """A shard of nine videos straight in the store: sampled frames of 1-4 frames, captions, and
    the bad cases (a failed sampling, a deleted frame file, no caption, no sampled_frames row)."""
    data = tmp_path / "data"
    store = ScoreStore(data / "curation.duckdb")
    counts = {"a1": 3, "b2": 1, "c3": 4, "d4": 2, "e5": 3, "f6": 2, "g7": 1, "h8": 2}
    rows = []
    for n, (vid, count) in enumerate(counts.items()):
        frames = [_frame(10 * n + i, text=(n + i) % 2 == 0) for i in range(count)]
        keys = save_frames(data, vid, list(range(count)), frames)
        rows.append({"video_id": vid, "frame_indices": list(range(count)), "frame_paths": keys, "width": W,
                     "height": H, "error": None})
    rows.append({"video_id": "x9", "frame_indices": [], "frame_paths": [], "width": None, "height": None,
                 "error": "decode failed at frame 0"})
    os.unlink(data / rows[4]["frame_paths"][1])  # e5 loses a frame file: that video alone fails
    store.replace_shard("sampled_frames", SHARD, pl.DataFrame(rows, schema=FRAMES_SCHEMA), code_version="f")
    captions = [(vid, f"a short caption number {i}") for i, vid in enumerate(counts) if vid != "f6"]
    captions.append(("z0", "captioned, but sampled_frames has no row for it"))
    store.replace_shard("captions", SHARD, pl.DataFrame(captions, schema={"video_id": pl.Utf8, "caption": pl.Utf8},
                                                        orient="row"), code_version="c")
    return store


def _score(store: ScoreStore, chunk_mb: str, monkeypatch) -> tuple[dict, dict]:
    monkeypatch.setenv(CHUNK_MB_ENV, chunk_mb)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, [SHARD])
        defs_ = build_definitions(recipe={}, data_dir=str(store.db_path.parent), profile="tiny")
        result = defs_.resolve_job_def(CURATE_SHARDS_JOB).execute_in_process(
            partition_key=SHARD, instance=instance, asset_selection=[AssetKey(a) for a in tuple(frame_scores())])
        assert result.success
        meta = {m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
                for m in result.asset_materializations_for_node("image_scores")}
    tables = {name: store.read_shard(name, SHARD).drop("shard", "code_version") for name in tuple(frame_scores())}
    return tables, meta


def _flat(values) -> np.ndarray:
    """Every number in a column's values, nested lists too (OCR's boxes: frames x boxes x corners)."""
    out: list = []
    for value in values:
        if isinstance(value, list):
            out.extend(_flat(value).tolist())
        elif value is not None:
            out.append(value)
    return np.asarray(out, dtype=np.float64)


def test_chunks_of_one_or_two_clips_score_as_the_whole_shard(shard_store, monkeypatch):
    whole, whole_meta = _score(shard_store, "1024", monkeypatch)
    # at most 4 frames a chunk: a1+b2 | c3 | d4 | e5 | f6+g7 | h8 (+ x9, z0: no frames to decode)
    small, small_meta = _score(shard_store, str(4.5 * FRAME_BYTES / 2**20), monkeypatch)
    assert whole_meta["aesthetics"]["frame_chunks"] == 1 and small_meta["aesthetics"]["frame_chunks"] == 6
    for name in tuple(frame_scores()):
        assert whole[name].columns == small[name].columns
        # same rows in the same order, errors included. OCR's per-frame ratios are exact; the
        # CLIP embeddings (CLIP similarity, aesthetics) move by float32 rounding (~3e-8 here)
        # because a batch of frames is made of other videos (as across shards of different
        # make-up today)
        atol = 0.0 if name == "ocr_area" else 1e-6
        exact = [c for c in whole[name].columns if whole[name][c].dtype in (pl.Utf8,)]
        assert whole[name].select(exact).rows() == small[name].select(exact).rows(), name
        for column in [c for c in whole[name].columns if c not in exact]:
            a, b = whole[name][column].to_list(), small[name][column].to_list()
            assert [x is None for x in a] == [x is None for x in b], (name, column)
            np.testing.assert_allclose(_flat(a), _flat(b), rtol=0, atol=atol, err_msg=f"{name}.{column}")
        assert whole_meta[name]["frames_decoded"] == small_meta[name]["frames_decoded"] == 15  # 18 less e5's 3
    errors = dict(whole["aesthetics"].filter(pl.col("error").is_not_null()).select("video_id", "error").rows())
    assert set(errors) == {"x9", "e5", "z0"} and "decode failed" in errors["x9"] and "missing" in errors["e5"]
    clip = whole["clip_similarity"]
    assert "f6" not in clip["video_id"].to_list()  # no caption, no row
    assert "no sampled frames" in clip.filter(pl.col("video_id") == "z0")["error"][0]
    assert whole["ocr_area"]["ocr_area_ratio"].max() > 0  # the text frames were found


def test_frames_resident_at_once_are_bounded(shard_store, monkeypatch):
    budget_frames = 4
    _, meta = _score(shard_store, str(budget_frames * FRAME_BYTES / 2**20), monkeypatch)
    m = meta["ocr_area"]
    assert m["frames_decoded"] == 15 and m["frame_chunks"] == 6
    # the chunk scored plus the next one decoding: never the shard's 15 frames at once
    assert 0 < m["frames_resident_peak"] <= 2 * budget_frames


def test_iterator_frees_each_chunk_and_decodes_ahead(shard_store):
    frames_by_id = shard_frames(shard_store, SHARD)
    ids = list(frames_by_id)
    loads, threads = [], []

    def load(by_id, video_ids):
        loads.append(list(video_ids))
        threads.append(threading.current_thread().name)
        return load_videos_frames(by_id, video_ids)

    chunks = FrameChunks(frames_by_id, ids, 3 * FRAME_BYTES / 2**20, load)
    seen, held = [], []
    for ready, errors in chunks:
        assert sum(len(f) for _, f in ready) <= 4  # c3 (4 frames) is larger than the budget: alone
        seen += [vid for vid, _ in ready] + list(errors)
        held.append(ready)
    assert sorted(seen) == sorted(ids) and loads == chunks.plan
    assert all(not r for r in held)  # each chunk's frames were dropped once the next was asked for
    assert chunks.resident_frames == 0 and chunks.peak_resident_frames <= 4 + 3
    assert any(name.startswith("frame-chunk") for name in threads)  # decoded ahead, off the scoring thread


def test_plan_keeps_order_and_budget():
    rows = {v: {"frame_paths": ["f"] * n, "width": 10, "height": 10} for v, n in
            {"a": 2, "b": 2, "c": 5, "d": 1, "e": 1}.items()}
    rows["bad"] = {"error": "x", "frame_paths": []}
    assert video_frame_bytes(rows["a"]) == 600 and video_frame_bytes(rows["bad"]) == 0
    assert video_frame_bytes({"frame_paths": ["f"], "width": None, "height": None}) == 1920 * 1080 * 3
    plan = plan_chunks(rows, ["a", "bad", "b", "c", "d", "missing", "e"], 4 * 300)
    assert plan == [["a", "bad", "b"], ["c"], ["d", "missing", "e"]]
    assert plan_chunks(rows, [], 100) == []


@pytest.mark.parametrize("value", ["0", "-3", "lots", "inf"])
def test_bad_chunk_budget_is_one_readable_line(value, monkeypatch):
    monkeypatch.setenv(CHUNK_MB_ENV, value)
    with pytest.raises(ValueError, match=f"{CHUNK_MB_ENV} must be a number of MiB above 0"):
        chunk_budget_mb()
    monkeypatch.setenv(CHUNK_MB_ENV, "2.5")
    assert chunk_budget_mb() == 2.5


def test_cli_refuses_a_bad_chunk_budget_at_start_up(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, CURATION_FRAMES_CHUNK_MB="lots", DAGSTER_HOME=str(tmp_path / "dagster_home"))
    out = subprocess.run([str(Path(sys.executable).parent / "curation-assets"), "status", "--data-dir", str(tmp_path / "d")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"error: {CHUNK_MB_ENV} must be a number of MiB above 0 (decoded frames per scoring chunk), got 'lots'"]
