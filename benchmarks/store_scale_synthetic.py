"""Synthetic but plausible rows for every shard table, with the asset modules' own schemas.

One shard = 64 registered files. Per shard, deterministically from the shard number:
~2% unreadable (raw_videos.error, curated `failed`), ~1% byte-identical copies of an earlier
file (duplicate_of), the rest scored by every scorer; curated verdicts ~55% kept, ~40%
rejected (by one or two bounds), ~10% of kept clips slow enough to be accelerated. No video
is decoded: the values are drawn from a seeded generator, the shapes (lists of 8 frame
scores, 8 frame keys, 8 pHashes) are what a real run writes at the default sampling.

Used by store_scale_build.py (today's layout) and by the design spike's prototypes (same
rows, other layouts), so every candidate stores the same bytes of information.
"""

from __future__ import annotations

import hashlib
import os
import json

import numpy as np
import polars as pl

from curation_assets.ingest.registry import REGISTRY_SCHEMA
from curation_assets.orchestration.assets.accelerated_videos import ACCELERATED_VIDEOS
from curation_assets.orchestration.assets.accelerated_videos import SCHEMA as ACCELERATED_SCHEMA
from curation_assets.orchestration.assets.captions import CAPTIONS, CAPTIONS_SCHEMA
from curation_assets.orchestration.assets.curated_videos import CURATED_VIDEOS
from curation_assets.orchestration.assets.curated_videos import schema as curated_schema
CURATED_SCHEMA_ = curated_schema()
from curation_assets.orchestration.assets.near_duplicates import NEAR_DUPLICATES
from curation_assets.orchestration.assets.near_duplicates import SCHEMA as NEAR_DUP_SCHEMA
from curation_assets.orchestration.assets.raw_videos import RAW_VIDEOS_SCHEMA
from curation_assets.orchestration.assets.shard_io import RAW_VIDEOS
from curation_assets.orchestration.assets.shots import SHOTS, SHOTS_SCHEMA
from curation_assets.orchestration.assets.video_hashes import SCHEMA as HASHES_SCHEMA
from curation_assets.orchestration.assets.video_hashes import VIDEO_HASHES
from curation_assets.orchestration.assets.video_pass import FRAMES_SCHEMA, MOTION, SAMPLED_FRAMES
from curation_assets.scores import all_scores

# the declared scores' tables (issue 22): schema and value column of each, as the assets write them
SCORES = {d.name: d for d in all_scores()}
RESOLUTION, CAPTION_REPETITION = "resolution", "caption_repetition"
CLIP_SIMILARITY, AESTHETICS, OCR_AREA = "clip_similarity", "aesthetics", "ocr_area"
COLUMNS = {t: SCORES[t].value for t in (CLIP_SIMILARITY, AESTHETICS, OCR_AREA)}

# 64 (the product's first shard size); a 10M-clip store is built with 512, as auto_shard_size picks
CLIPS_PER_SHARD = int(os.environ.get("STORE_SCALE_CLIPS_PER_SHARD", "64"))
FRAMES = 8  # sampled frames per video
# the 14 shard tables of a run (the registry is the 15th object per shard)
SHARD_TABLES = (SHOTS, RAW_VIDEOS, RESOLUTION, MOTION, SAMPLED_FRAMES, CAPTIONS, CAPTION_REPETITION,
                CLIP_SIMILARITY, AESTHETICS, OCR_AREA, VIDEO_HASHES, NEAR_DUPLICATES, CURATED_VIDEOS,
                ACCELERATED_VIDEOS)


def video_path(videos_root: str, index: int) -> str:
    """The index-th file of the corpus: 1,000 per folder, so os.walk order = index order."""
    return f"{videos_root}/d{index // 1000:05d}/v{index:08d}.mp4"


def content_id(index: int) -> str:
    return hashlib.sha256(f"video-{index}".encode()).hexdigest()


def registry_rows(shard: str, number: int, videos_root: str, registered_at) -> pl.DataFrame:
    first = number * CLIPS_PER_SHARD
    idx = range(first, first + CLIPS_PER_SHARD)
    return pl.DataFrame({
        "seq": list(idx), "path": [video_path(videos_root, i) for i in idx], "shard": [shard] * CLIPS_PER_SHARD,
        "manifest_text": [None] * CLIPS_PER_SHARD, "origin": [videos_root] * CLIPS_PER_SHARD,
        "registration_error": [None] * CLIPS_PER_SHARD, "registered_at": [registered_at] * CLIPS_PER_SHARD,
    }, schema=REGISTRY_SCHEMA)


def shard_tables(shard: str, number: int, videos_root: str, versions: dict[str, str]) -> dict[str, pl.DataFrame]:
    """table -> the shard's rows, each with `shard` and `code_version` as write_shard adds them."""
    rng = np.random.default_rng(number)
    n, first = CLIPS_PER_SHARD, number * CLIPS_PER_SHARD
    seq = np.arange(first, first + n)
    paths = [video_path(videos_root, int(i)) for i in seq]
    unreadable = rng.random(n) < 0.02
    # a copy of a file registered earlier (another shard): same content hash
    copy_of = np.where((rng.random(n) < 0.01) & (seq > 1000) & ~unreadable, rng.integers(0, np.maximum(seq - 1, 1)), -1)
    ids = [None if unreadable[k] else content_id(int(copy_of[k]) if copy_of[k] >= 0 else int(seq[k])) for k in range(n)]
    width = rng.choice([640, 1280, 1920, 480], n, p=[0.3, 0.4, 0.2, 0.1]).astype(np.int64)
    height = (width * 9 // 16).astype(np.int64)
    fps = rng.choice([24.0, 25.0, 29.97, 30.0], n)
    frames = rng.integers(48, 900, n).astype(np.int64)
    duration = frames / fps
    raw = pl.DataFrame({
        "video_id": ids, "path": paths, "seq": seq.astype(np.int64), "source_caption": [None] * n,
        "duplicate_of": [video_path(videos_root, int(c)) if c >= 0 else None for c in copy_of],
        "width": np.where(unreadable, 0, width), "height": np.where(unreadable, 0, height),
        "rotation": np.zeros(n, np.int64), "display_width": width, "display_height": height,
        "fps": fps, "frame_count": frames, "duration_s": duration, "codec": ["h264"] * n,
        "has_audio": rng.random(n) < 0.5, "file_size": rng.integers(200_000, 80_000_000, n),
        "error": ["unreadable: no video stream" if u else None for u in unreadable],
    }, schema_overrides=RAW_VIDEOS_SCHEMA).with_columns(
        [pl.lit(None, RAW_VIDEOS_SCHEMA[c]).alias(c) for c in RAW_VIDEOS_SCHEMA if c not in
         ("video_id", "path", "seq", "source_caption", "duplicate_of", "width", "height", "rotation", "display_width",
          "display_height", "fps", "frame_count", "duration_s", "codec", "has_audio", "file_size", "error")]
    ).select(list(RAW_VIDEOS_SCHEMA))
    primary = raw.filter(pl.col("error").is_null() & pl.col("duplicate_of").is_null())
    m = primary.height
    pids = primary["video_id"].to_list()
    motion = rng.gamma(2.0, 1.2, m)
    captions_text = [f"a clip of scene {int(s) % 997} with {['people', 'a car', 'the sea', 'a dog'][int(s) % 4]} moving"
                     for s in primary["seq"]]
    clip_sim = rng.normal(0.28, 0.04, m)
    aesthetic = rng.normal(0.5, 0.08, m)
    ocr = np.abs(rng.normal(0.01, 0.03, m))
    rep = np.abs(rng.normal(0.05, 0.04, m))
    frame_idx = [list(range(0, FRAMES * 10, 10))] * m

    def per_frame(center):
        return [list(map(float, center[k] + rng.normal(0, 0.02, FRAMES))) for k in range(m)]

    out: dict[str, pl.DataFrame] = {}
    out[SHOTS] = pl.DataFrame(schema=SHOTS_SCHEMA)  # no long sources split: an empty shard, as written
    out[RAW_VIDEOS] = raw
    out[RESOLUTION] = primary.with_columns(pl.lit(None, pl.Utf8).alias("error")).select(list(SCORES[RESOLUTION].table_schema()))
    out[MOTION] = pl.DataFrame({
        "video_id": pids, "motion_score": motion, "pair_scores": per_frame(motion),
        "frame_indices": frame_idx, "frames_decoded": primary["frame_count"], "params": ['{"sampling_fps": 2}'] * m,
        "seconds": rng.random(m), "error": [None] * m}, schema=SCORES[MOTION].table_schema())
    out[SAMPLED_FRAMES] = pl.DataFrame({
        "video_id": pids, "frame_indices": frame_idx, "timestamps": [[i / 24 for i in range(0, FRAMES * 10, 10)]] * m,
        "frame_paths": [[f"frames/{v[:2]}/{v}/{i:07d}.png" for i in range(0, FRAMES * 10, 10)] for v in pids],
        "width": primary["width"], "height": primary["height"], "params": ['{"frames": 8}'] * m,
        "error": [None] * m, **({"preview_path": [None] * m} if "preview_path" in FRAMES_SCHEMA else {})},
        schema=FRAMES_SCHEMA)
    out[CAPTIONS] = pl.DataFrame({
        "video_id": pids, "caption": captions_text, "source": ["generated"] * m, "original_caption": [None] * m,
        "model": ["Salesforce/blip2-opt-2.7b"] * m, "profile": ["real"] * m, "error": [None] * m}, schema=CAPTIONS_SCHEMA)
    out[CAPTION_REPETITION] = pl.DataFrame({
        "video_id": pids, "char_rep_ratio": rep, "caption_source": ["generated"] * m,
        "params": ['{"rep_len": 10}'] * m, "error": [None] * m}, schema=SCORES[CAPTION_REPETITION].table_schema())
    for table, values, model in ((CLIP_SIMILARITY, clip_sim, "openai/clip-vit-base-patch32"),
                                 (AESTHETICS, aesthetic, "laion/aesthetic-v2"), (OCR_AREA, ocr, "easyocr/craft")):
        data = {"video_id": pids, COLUMNS[table]: values, "frame_scores": per_frame(values), "model": [model] * m,
                "profile": ["real"] * m, "params": ['{"reduce": "avg"}'] * m, "error": [None] * m}
        schema = SCORES[table].table_schema()
        data.update({c: [None] * m for c in schema if c not in data})  # columns added later (e.g. OCR's frame_boxes)
        out[table] = pl.DataFrame(data, schema=schema)
    out[VIDEO_HASHES] = pl.DataFrame({
        "video_id": pids, "frame_hashes": [list(map(int, rng.integers(-2**62, 2**62, FRAMES))) for _ in range(m)],
        "frame_indices": frame_idx, "error": [None] * m}, schema=HASHES_SCHEMA)
    near = rng.random(m) < 0.02
    out[NEAR_DUPLICATES] = pl.DataFrame({
        "video_id": pids, "near_duplicate_of": [pids[(k + 1) % m] if near[k] else None for k in range(m)],
        "similarity": rng.random(m), "rank": np.arange(m), "threshold": [0.8] * m, "error": [None] * m},
        schema=NEAR_DUP_SCHEMA)
    out[CURATED_VIDEOS] = _curated(raw, primary, motion, clip_sim, aesthetic, ocr, rep, captions_text, near, rng)
    out[ACCELERATED_VIDEOS] = _accelerated(out[CURATED_VIDEOS], primary, rng)
    return {t: f.with_columns(pl.lit(shard).alias("shard"), pl.lit(versions[t]).alias("code_version"))
            for t, f in out.items()}


THRESHOLDS = json.dumps({"motion_min": 0.25, "aesthetics_min": 0.4, "clip_similarity_min": 0.2, "ocr_area_max": 0.1})


def _curated(raw, primary, motion, clip_sim, aesthetic, ocr, rep, captions_text, near, rng) -> pl.DataFrame:
    by_id = {v: k for k, v in enumerate(primary["video_id"].to_list())}
    rows = []
    for r in raw.iter_rows(named=True):
        base = {c: None for c in CURATED_SCHEMA_}
        base.update(path=r["path"], video_id=r["video_id"], width=r["width"], height=r["height"],
                    model_profile="real", scorers_off=[], thresholds=THRESHOLDS)
        if r["error"]:
            base.update(status="failed", reasons=[r["error"]], error=r["error"])
        elif r["duplicate_of"]:
            base.update(status="rejected", reasons=[f"duplicate_of:{r['duplicate_of']}"])
        else:
            k = by_id[r["video_id"]]
            reasons = []
            draw = rng.random()
            if draw < 0.18:
                reasons.append("motion_score<0.25")
            elif draw < 0.30:
                reasons.append("aesthetics_score<0.4")
            elif draw < 0.36:
                reasons.append("ocr_area_ratio>0.1")
            elif draw < 0.40:
                reasons += ["clip_similarity<0.2", "motion_score<0.25"]
            if near[k]:
                reasons.append("near_duplicate_of:" + primary["video_id"][(k + 1) % primary.height])
            base.update(status="rejected" if reasons else "kept", reasons=reasons, caption_source="generated",
                        caption=captions_text[k], motion_score=float(motion[k]), char_rep_ratio=float(rep[k]),
                        clip_similarity=float(clip_sim[k]), aesthetics_score=float(aesthetic[k]),
                        ocr_area_ratio=float(ocr[k]))
        rows.append(base)
    return pl.DataFrame(rows, schema=CURATED_SCHEMA_, orient="row")


def _accelerated(curated: pl.DataFrame, primary: pl.DataFrame, rng) -> pl.DataFrame:
    slow = curated.filter((pl.col("status") == "kept") & (pl.col("motion_score") < 0.6))
    info = primary.select("video_id", "fps", "frame_count", "duration_s")
    slow = slow.join(info, on="video_id", how="left")
    rows = []
    for r in slow.iter_rows(named=True):
        factor = float(rng.choice([1.5, 2.0, 3.0]))
        done = rng.random() < 0.5
        rows.append({
            "video_id": r["video_id"], "path": r["path"], "status": "accelerated" if done else "skipped",
            "reason": None if done else "aesthetics below the floor",
            "output_path": f"accelerated/{r['video_id'][:2]}/{r['video_id']}_x{factor:g}.mp4" if done else None,
            "factor": factor, "original_duration_s": r["duration_s"], "new_duration_s": r["duration_s"] / factor,
            "original_frames": r["frame_count"], "new_frames": int(r["frame_count"] / factor), "fps": r["fps"],
            "motion_before": r["motion_score"], "motion_after": r["motion_score"] * factor,
            "target_min": 0.6, "target_max": 3.0, "params": '{"accelerate_below": 0.6}', "error": None})
    return pl.DataFrame(rows, schema=ACCELERATED_SCHEMA, orient="row") if rows else pl.DataFrame(schema=ACCELERATED_SCHEMA)
