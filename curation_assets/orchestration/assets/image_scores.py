"""The scorers that read sampled frames through a model: CLIP similarity, aesthetics, OCR area.

Each loads its model once, before touching any video (missing weights fail the asset
whole), batches frames across the shard's videos, and reduces per-frame values per video.
"""

import time

import numpy as np
import polars as pl
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, asset

from curation_assets.orchestration.assets.captions import CAPTIONS
from curation_assets.orchestration.assets.shard_io import (
    SAMPLED_FRAMES, frames_or_error, model_metadata, params_json, shard_frames, to_frame, write_shard,
)
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version, config_class
from curation_assets.orchestration.resources import CurationStore, ModelResource
from curation_assets import ray_engine
from curation_assets.scorers.reduce import reduce_scores

CLIP_SIMILARITY, AESTHETICS, OCR_AREA = "clip_similarity", "aesthetics", "ocr_area"


def _schema(score_column: str) -> dict:
    return {"video_id": pl.Utf8, score_column: pl.Float64, "frame_scores": pl.List(pl.Float64),
            "model": pl.Utf8, "profile": pl.Utf8, "params": pl.Utf8, "error": pl.Utf8}


def _range_check(asset_name: str, frame: pl.DataFrame, column: str, low: float, high: float) -> AssetCheckResult:
    scored = frame.filter(pl.col("error").is_null())
    bad = scored.filter((pl.col(column) < low) | (pl.col(column) > high) | pl.col(column).is_nan()).height
    return AssetCheckResult(asset_key=asset_name, check_name=f"{column}_in_range", passed=bad == 0,
                            metadata={"out_of_range": bad, "range": f"[{low}, {high}]"})


def _load_videos(store, shard: str, video_ids: list[str]):
    """(video_id, frames) for videos with frames, and video_id -> error for the rest."""
    by_id = shard_frames(store, shard)
    ready, errors = [], {}
    for vid in video_ids:
        frames, error = frames_or_error(by_id.get(vid))
        if error:
            errors[vid] = error
        else:
            ready.append((vid, frames))
    return ready, errors


def _score_row(video_id: str, column: str, per_frame, mode: str, base: dict) -> dict:
    return {"video_id": video_id, column: reduce_scores(per_frame, mode),
            "frame_scores": [float(x) for x in per_frame], "error": None, **base}


def _flatten(ready):
    images, owners = [], []
    for i, (_, frames) in enumerate(ready):
        images.extend(frames)
        owners.extend([i] * len(frames))
    return images, np.asarray(owners)


def build_clip_similarity(recipe: Recipe, profile: str):
    ClipConfig = config_class(CLIP_SIMILARITY, recipe)
    column = "clip_similarity"

    @asset(
        name=CLIP_SIMILARITY, deps=[SAMPLED_FRAMES, CAPTIONS], partitions_def=shard_partitions,
        code_version=code_version(CLIP_SIMILARITY, recipe, profile), group_name="scores", kinds={"duckdb", "pytorch"},
        check_specs=[AssetCheckSpec(f"{column}_in_range", asset=CLIP_SIMILARITY)],
        description="Cosine similarity of normalized CLIP image and caption embeddings per sampled frame, "
        "reduced per video (avg by default). Videos without a caption have no row.",
    )
    def clip_similarity(context: AssetExecutionContext, config: ClipConfig, curation_store: CurationStore,
                        models: ModelResource):
        from curation_assets.models.clip import frame_text_similarity, load_clip

        started, store, settings = time.perf_counter(), curation_store.store(), models.settings()
        encoder = ray_engine.load_model(load_clip, config.model_name, config.pretrained, settings)
        model_id = f"open_clip:{config.model_name}/{config.pretrained}"
        captions = {r["video_id"]: r["caption"] for r in store.read_shard(CAPTIONS, context.partition_key).iter_rows(named=True)
                    if r["caption"]}
        ready, errors = _load_videos(store, context.partition_key, sorted(captions))
        base = {"model": model_id, "profile": settings.profile, "params": params_json({"reduce_mode": config.reduce_mode})}
        rows = [{"video_id": vid, "error": err, **base} for vid, err in errors.items()]
        if ready:
            images, owners = _flatten(ready)
            image_emb = encoder.encode_images(images)
            text_emb = encoder.encode_texts([captions[vid] for vid, _ in ready])
            for i, (vid, _) in enumerate(ready):
                per_frame = frame_text_similarity(image_emb[owners == i], text_emb[i])
                rows.append(_score_row(vid, column, per_frame, config.reduce_mode, base))
        frame = to_frame(rows, _schema(column))
        return write_shard(context, store, CLIP_SIMILARITY, frame, started, {**model_metadata(model_id, settings.profile), **ray_engine.placement_metadata(encoder)},
                           check_results=[_range_check(CLIP_SIMILARITY, frame, column, -1.0, 1.0)])

    return clip_similarity


def build_aesthetics(recipe: Recipe, profile: str):
    AestheticsConfig = config_class(AESTHETICS, recipe)
    column = "aesthetics_score"

    @asset(
        name=AESTHETICS, deps=[SAMPLED_FRAMES], partitions_def=shard_partitions,
        code_version=code_version(AESTHETICS, recipe, profile), group_name="scores", kinds={"duckdb", "pytorch"},
        check_specs=[AssetCheckSpec(f"{column}_in_range", asset=AESTHETICS)],
        description="LAION improved aesthetic predictor v2 (sac+logos+ava1-l14-linearMSE on normalized CLIP "
        "ViT-L/14 embeddings) per sampled frame, divided by 10, reduced per video.",
    )
    def aesthetics(context: AssetExecutionContext, config: AestheticsConfig, curation_store: CurationStore,
                   models: ModelResource):
        from curation_assets.models.aesthetics import load_aesthetic_scorer

        started, store, settings = time.perf_counter(), curation_store.store(), models.settings()
        scorer = ray_engine.load_model(load_aesthetic_scorer, settings)
        video_ids = list(shard_frames(store, context.partition_key))
        ready, errors = _load_videos(store, context.partition_key, video_ids)
        base = {"model": scorer.model_id, "profile": settings.profile, "params": params_json({"reduce_mode": config.reduce_mode})}
        rows = [{"video_id": vid, "error": err, **base} for vid, err in errors.items()]
        if ready:
            images, owners = _flatten(ready)
            scores = np.asarray(scorer.score(images), dtype=np.float64)
            for i, (vid, _) in enumerate(ready):
                rows.append(_score_row(vid, column, scores[owners == i], config.reduce_mode, base))
        frame = to_frame(rows, _schema(column))
        # the head is a regression, not a bounded one: a real clip can land slightly outside 0..1
        return write_shard(context, store, AESTHETICS, frame, started, {**model_metadata(scorer.model_id, settings.profile), **ray_engine.placement_metadata(scorer)},
                           check_results=[_range_check(AESTHETICS, frame, column, -1.0, 2.0)])

    return aesthetics


def build_ocr_area(recipe: Recipe, profile: str):
    OcrConfig = config_class(OCR_AREA, recipe)
    column = "ocr_area_ratio"

    @asset(
        name=OCR_AREA, deps=[SAMPLED_FRAMES], partitions_def=shard_partitions,
        code_version=code_version(OCR_AREA, recipe, profile), group_name="scores", kinds={"duckdb", "pytorch"},
        check_specs=[AssetCheckSpec(f"{column}_in_range", asset=OCR_AREA)],
        description="Share of each sampled frame covered by EasyOCR (CRAFT detector) text boxes, mean per video "
        "(data-juicer's video_ocr_area_ratio).",
    )
    def ocr_area(context: AssetExecutionContext, config: OcrConfig, curation_store: CurationStore, models: ModelResource):
        from curation_assets.models.ocr import load_text_detector

        started, store, settings = time.perf_counter(), curation_store.store(), models.settings()
        detector = ray_engine.load_model(load_text_detector, settings, languages=tuple(config.languages), max_side=config.max_side,
                                      precision=config.precision)
        model_id = detector.model_id
        video_ids = list(shard_frames(store, context.partition_key))
        ready, errors = _load_videos(store, context.partition_key, video_ids)
        # OCR weights are real in every profile: the detector ships in a pip package
        base = {"model": model_id, "profile": "real", "params": params_json(config.model_dump())}
        rows = [{"video_id": vid, "error": err, **base} for vid, err in errors.items()]
        for vid, frames in ready:
            try:
                rows.append(_score_row(vid, column, detector.area_ratios(frames), "avg", base))
            except ray_engine.RayStepError:
                raise  # a lost node is no OCR error of this video: the step fails whole and is re-run
            except Exception as exc:
                rows.append({"video_id": vid, "error": f"{type(exc).__name__}: {str(exc)[:300]}", **base})
        frame = to_frame(rows, _schema(column))
        # overlapping boxes can sum past the frame area, as in data-juicer
        return write_shard(context, store, OCR_AREA, frame, started, {**model_metadata(model_id, "real"), **ray_engine.placement_metadata(detector)},
                           check_results=[_range_check(OCR_AREA, frame, column, 0.0, 2.0)])

    return ocr_area
