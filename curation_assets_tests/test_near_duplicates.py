"""Near-duplicate clips by perceptual video hash: known near-duplicates found, different
scenes and the five real clips not; the keep rule; earlier shards win; the graph's verdicts.

The tiny profile's CLIP embeddings are noise, so the check uses the perceptual hash of the
sampled frames (no model), here and in every profile."""

import itertools
from pathlib import Path

import av
import numpy as np
import polars as pl
import pytest
from dagster import instance_for_test

from curation_assets.curation.rules import judge, rule_name
from curation_assets.ingest.discover import discover
from curation_assets.ingest.registry import register
from curation_assets.orchestration.definitions import build_definitions
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.samples.near_duplicates import NEAR_DUPLICATE_EXPECTED, write_near_duplicate_set
from curation_assets.samples.synthetic import _run_ffmpeg
from curation_assets.scorers.frame_sampling import uniform_indices
from curation_assets.scorers.video_hash import (
    Candidate, choose_near_duplicates, frame_phash, to_signed, video_similarity,
)
from curation_assets.store import ScoreStore
from curation_assets_tests.test_assets import run_shard

THRESHOLD = 0.8  # the recipe default
REAL_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_videos"


def _hashes(path, k=3) -> list[int]:
    """The graph's default sampling (first, middle, last frame), hashed."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return [to_signed(frame_phash(frames[i])) for i in uniform_indices(len(frames), k)]


@pytest.fixture(scope="module")
def near_dup_set(tmp_path_factory):
    return write_near_duplicate_set(tmp_path_factory.mktemp("near_dups"))


def test_phash_ignores_brightness_and_sees_content():
    from curation_assets.samples.synthetic import _texture

    img = (_texture(128, 160, seed=1).astype(np.float32) * 0.85).astype(np.uint8)
    brighter = np.clip(img.astype(np.float32) * 1.1, 0, 255).astype(np.uint8)
    assert bin(frame_phash(img) ^ frame_phash(brighter)).count("1") <= 2  # rounding only
    other = _texture(128, 160, seed=2)
    assert bin(frame_phash(img) ^ frame_phash(other)).count("1") > 16


def test_synthetic_near_duplicates_found_and_different_scenes_not(near_dup_set):
    hashes = {name: _hashes(path) for name, path in near_dup_set.items()}
    for a, b in itertools.combinations(sorted(hashes), 2):
        sim = video_similarity(hashes[a], hashes[b])
        same = {NEAR_DUPLICATE_EXPECTED[a] or a, NEAR_DUPLICATE_EXPECTED[b] or b} == {"base.mp4"}
        assert (sim >= THRESHOLD) == same, (a, b, round(sim, 3))


def test_keep_rule_and_earlier_shards_win():
    h = [to_signed(x) for x in (0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF, 0x3333333333333333)]
    near = [h[0] ^ 0b111, h[1], h[2] ^ (1 << 40)]  # 4 of 192 bits differ
    far = [to_signed(x) for x in (0x123456789ABCDEF0, 0x0FEDCBA987654321, 0x5555AAAA5555AAAA)]
    cands = [Candidate("worse", near, (-0.3, 0)), Candidate("best", h, (-0.9, 1)), Candidate("other", far, (-0.5, 2))]
    out = {m.video_id: m for m in choose_near_duplicates(cands, [], THRESHOLD)}
    assert out["best"].near_duplicate_of is None and out["other"].near_duplicate_of is None
    assert out["worse"].near_duplicate_of == "best" and out["worse"].similarity == pytest.approx(1 - 4 / 192)
    # a video of an earlier shard wins even over this shard's best
    out = {m.video_id: m for m in choose_near_duplicates(cands, [("earlier", near)], THRESHOLD)}
    assert out["best"].near_duplicate_of == "earlier" and out["worse"].near_duplicate_of == "earlier"
    assert out["other"].near_duplicate_of is None
    # the verdicts do not depend on the order the candidates come in
    again = {m.video_id: m.near_duplicate_of for m in choose_near_duplicates(cands[::-1], [], THRESHOLD)}
    assert again == {"best": None, "other": None, "worse": "best"}


def test_verdict_names_the_kept_video():
    video = {"near_duplicate_of": "abc123", "motion_score": 1.0, "caption": "x",
             **{f"{a}_present": True for a in ("resolution", "motion", "aesthetics", "ocr_area", "caption_repetition",
                                              "clip_similarity")}}
    verdict = judge(video, {"motion_min": 0.25})
    assert verdict.status == "rejected" and verdict.reasons == ["near_duplicate_of:abc123"]
    assert rule_name(verdict.reasons[0]) == "near_duplicate"


def test_real_clips_are_not_near_duplicates_but_their_copies_are(tmp_path):
    clips = sorted(REAL_VIDEOS.glob("video*.mp4"))
    if len(clips) != 5:
        pytest.skip(f"real clips not available at {REAL_VIDEOS}")
    hashes = {c.name: _hashes(c) for c in clips}
    for a, b in itertools.combinations(sorted(hashes), 2):
        assert video_similarity(hashes[a], hashes[b]) < THRESHOLD, (a, b)
    # a low-quality re-encode with a 2% crop and +10% brightness of video2 matches video2 only
    copy = tmp_path / "v2_copy.mp4"
    _run_ffmpeg(["-i", f"file:{clips[1]}", "-vf", "crop=iw*0.98:ih*0.98,scale=480:640,"
                 "lutrgb=r=val*1.1:g=val*1.1:b=val*1.1", "-an", "-c:v", "libx264", "-crf", "32", f"file:{copy}"])
    sims = {name: video_similarity(_hashes(copy), h) for name, h in hashes.items()}
    assert [n for n, s in sims.items() if s >= THRESHOLD] == ["video2.mp4"], sims


def test_graph_rejects_near_duplicates_within_and_across_shards(near_dup_set, tmp_path):
    """Two shards of 4: shard 0 keeps base (registered first; tiny profile: aesthetics are
    noise, so resolution, duration and order decide) and rejects brighter and cropped;
    shard 1's reencoded and shifted_1s copies point at shard 0's base."""
    data = tmp_path / "data"
    store = ScoreStore(data / "curation.duckdb")
    folder = next(iter(near_dup_set.values())).parent
    shards = register(store, discover(folder), shard_size=4)
    assert shards == ["shard-00000", "shard-00001"]
    recipe = {"near_duplicates": {"enabled": True, "threshold": THRESHOLD}}
    only = ["raw_videos", "shots", "motion", "sampled_frames", "aesthetics", "video_hashes", "near_duplicates"]
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, shards)
        defs_ = build_definitions(recipe=recipe, data_dir=str(data))
        for shard in shards:
            assert run_shard(defs_, instance, shard=shard, only=only).success
    raw = store.query("select video_id, path from raw_videos")
    name_of = {r["video_id"]: Path(r["path"]).name for r in raw.iter_rows(named=True)}
    nd = store.query("select video_id, near_duplicate_of, similarity, shard from near_duplicates")
    got = {name_of[r["video_id"]]: (name_of.get(r["near_duplicate_of"]), r["shard"]) for r in nd.iter_rows(named=True)}
    assert {n: d for n, (d, _) in got.items()} == NEAR_DUPLICATE_EXPECTED
    assert got["reencoded.mp4"][1] == "shard-00001" and got["base.mp4"][1] == "shard-00000"
    # off by default: the asset writes nothing, so no verdict changes
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(shard_partitions.name, shards)
        assert run_shard(build_definitions(recipe={}, data_dir=str(data)), instance, only=["near_duplicates"]).success
    assert store.read_shard("near_duplicates", "shard-00000").height == 0


@pytest.mark.slow
def test_cli_funnel_counts_near_duplicates(near_dup_set, isolated_env, tmp_path, capsys):
    from curation_assets.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("near_duplicates: {enabled: true}\n")
    folder = next(iter(near_dup_set.values())).parent
    assert main(["run", "--input", str(folder), "--config", str(recipe), "--no-outputs", "--shard-size", "100"]) == 0
    out = capsys.readouterr().out
    assert "near_duplicate" in out
    store = ScoreStore(isolated_env / "curation.duckdb")
    curated = store.query("select path, status, reasons from curated_videos")
    near = curated.filter(pl.col("reasons").list.first().str.starts_with("near_duplicate_of:"))
    assert sorted(Path(p).name for p in near["path"]) == sorted(n for n, d in NEAR_DUPLICATE_EXPECTED.items() if d)
