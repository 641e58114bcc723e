"""The scorers that read sampled frames through a model: CLIP similarity, aesthetics, OCR area.

One step (`image_scores`) makes the three assets so that a shard's frame files are decoded
once, on a thread pool, for all of them. Each asset keeps its own table, code version, range
check, config section and metadata, and the step is subsettable: materializing one asset (or a
recipe that leaves a scorer out, see `build_image_scores(scorers=...)`) computes only that one.
Each scorer loads its model before touching any video; missing weights fail that asset whole
(no rows), the others are still written, and the step then fails naming it. The shard's videos
are taken in chunks of bounded decoded size ($CURATION_FRAMES_CHUNK_MB, see frames/chunks.py),
each chunk scored by every selected scorer while the next one decodes; frames are batched
across a chunk's videos, per-frame values are reduced per video, and each table is written
once, whole, at the end.
"""

import time

import numpy as np
import polars as pl
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, AssetKey, AssetSpec, Config, multi_asset
from pydantic import Field, create_model

from curation_assets.orchestration.assets.captions import CAPTIONS
from curation_assets.orchestration.assets.shard_io import (
    SAMPLED_FRAMES, load_videos_frames, model_metadata, params_json, shard_frames, to_frame, write_shard,
    write_switched_off,
)
from curation_assets.orchestration.pools import MODEL_POOL
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version, config_class, scorer_enabled
from curation_assets.orchestration.resources import CurationStore, ModelResource
from curation_assets.execution import model_actors
from curation_assets.frames.chunks import FrameChunks, chunk_budget_mb, video_frame_bytes
from curation_assets.scorers.reduce import reduce_scores

CLIP_SIMILARITY, AESTHETICS, OCR_AREA = "clip_similarity", "aesthetics", "ocr_area"
IMAGE_SCORERS = (CLIP_SIMILARITY, AESTHETICS, OCR_AREA)
IMAGE_SCORES_OP = "image_scores"
COLUMNS = {CLIP_SIMILARITY: "clip_similarity", AESTHETICS: "aesthetics_score", OCR_AREA: "ocr_area_ratio"}
# valid ranges of the range checks: cosine; the aesthetic head is a regression, not a bounded one
# (a real clip can land slightly outside 0..1); overlapping OCR boxes can sum past the frame area,
# as in data-juicer
RANGES = {CLIP_SIMILARITY: (-1.0, 1.0), AESTHETICS: (-1.0, 2.0), OCR_AREA: (0.0, 2.0)}
DESCRIPTIONS = {
    CLIP_SIMILARITY: "Cosine similarity of normalized CLIP image and caption embeddings per sampled frame, "
    "reduced per video (avg by default). Videos without a caption have no row.",
    AESTHETICS: "LAION improved aesthetic predictor v2 (sac+logos+ava1-l14-linearMSE on normalized CLIP "
    "ViT-L/14 embeddings) per sampled frame, divided by 10, reduced per video.",
    OCR_AREA: "Share of each sampled frame covered by EasyOCR (CRAFT detector) text boxes, mean per video "
    "(data-juicer's video_ocr_area_ratio).",
}


def _schema(score_column: str) -> dict:
    return {"video_id": pl.Utf8, score_column: pl.Float64, "frame_scores": pl.List(pl.Float64),
            "model": pl.Utf8, "profile": pl.Utf8, "params": pl.Utf8, "error": pl.Utf8}


def _range_check(asset_name: str, frame: pl.DataFrame, column: str, low: float, high: float) -> AssetCheckResult:
    scored = frame.filter(pl.col("error").is_null())
    bad = scored.filter((pl.col(column) < low) | (pl.col(column) > high) | pl.col(column).is_nan()).height
    return AssetCheckResult(asset_key=asset_name, check_name=f"{column}_in_range", passed=bad == 0,
                            metadata={"out_of_range": bad, "range": f"[{low}, {high}]"})


def _score_row(video_id: str, column: str, per_frame, mode: str, base: dict) -> dict:
    return {"video_id": video_id, column: reduce_scores(per_frame, mode),
            "frame_scores": [float(x) for x in per_frame], "error": None, **base}


def _flatten(ready):
    images, owners = [], []
    for i, (_, frames) in enumerate(ready):
        images.extend(frames)
        owners.extend([i] * len(frames))
    return images, np.asarray(owners)



# --------------------------------------------------------------------------- the three scorers
# Each: (loaded model, config, settings) -> fn(ready, captions) -> (rows, model_id, profile).


def _load_clip(config, settings):
    from curation_assets.models.clip import load_clip

    return model_actors.load_model(load_clip, config.model_name, config.pretrained, settings)


def _score_clip(encoder, config, settings, ready, errors, captions):
    from curation_assets.models.clip import frame_text_similarity

    column, model_id = COLUMNS[CLIP_SIMILARITY], f"open_clip:{config.model_name}/{config.pretrained}"
    base = {"model": model_id, "profile": settings.profile, "params": params_json({"reduce_mode": config.reduce_mode})}
    ready = [(vid, frames) for vid, frames in ready if vid in captions]  # videos without a caption have no row
    rows = [{"video_id": vid, "error": err, **base} for vid, err in errors.items() if vid in captions]
    if ready:
        images, owners = _flatten(ready)
        image_emb = encoder.encode_images(images)
        text_emb = encoder.encode_texts([captions[vid] for vid, _ in ready])
        for i, (vid, _) in enumerate(ready):
            per_frame = frame_text_similarity(image_emb[owners == i], text_emb[i])
            rows.append(_score_row(vid, column, per_frame, config.reduce_mode, base))
    return rows, model_id, settings.profile


def _load_aesthetics(config, settings):
    from curation_assets.models.aesthetics import load_aesthetic_scorer

    return model_actors.load_model(load_aesthetic_scorer, settings)


def _score_aesthetics(scorer, config, settings, ready, errors, captions):
    column = COLUMNS[AESTHETICS]
    base = {"model": scorer.model_id, "profile": settings.profile, "params": params_json({"reduce_mode": config.reduce_mode})}
    rows = [{"video_id": vid, "error": err, **base} for vid, err in errors.items()]
    if ready:
        images, owners = _flatten(ready)
        scores = np.asarray(scorer.score(images), dtype=np.float64)
        for i, (vid, _) in enumerate(ready):
            rows.append(_score_row(vid, column, scores[owners == i], config.reduce_mode, base))
    return rows, scorer.model_id, settings.profile


def _load_ocr(config, settings):
    from curation_assets.models.ocr import load_text_detector

    return model_actors.load_model(load_text_detector, settings, languages=tuple(config.languages),
                                 max_side=config.max_side, precision=config.precision)


def _score_ocr(detector, config, settings, ready, errors, captions):
    column, model_id = COLUMNS[OCR_AREA], detector.model_id
    # OCR weights are real in every profile: the detector ships in a pip package
    base = {"model": model_id, "profile": "real", "params": params_json(config.model_dump())}
    rows = [{"video_id": vid, "error": err, **base} for vid, err in errors.items()]
    if not ready:
        return rows, model_id, "real"
    images, owners = _flatten(ready)
    try:  # the whole chunk at once: the detector overlaps its per-frame CPU work across frames
        ratios = np.asarray(detector.area_ratios(images), dtype=np.float64)
        per_video = [ratios[owners == i] for i in range(len(ready))]
    except model_actors.RayStepError:
        raise  # a lost node is no OCR error of any video: the step fails whole and is re-run
    except Exception:  # find the video(s) at fault: one failing video must not fail the shard
        per_video = []
        for _, frames in ready:
            try:
                per_video.append(detector.area_ratios(frames))
            except model_actors.RayStepError:
                raise
            except Exception as exc:
                per_video.append(exc)
    for (vid, _), values in zip(ready, per_video):
        if isinstance(values, Exception):
            rows.append({"video_id": vid, "error": f"{type(values).__name__}: {str(values)[:300]}", **base})
        else:
            rows.append(_score_row(vid, column, values, "avg", base))
    return rows, model_id, "real"


SCORERS = {
    CLIP_SIMILARITY: (_load_clip, _score_clip),
    AESTHETICS: (_load_aesthetics, _score_aesthetics),
    OCR_AREA: (_load_ocr, _score_ocr),
}


def _off_suffix(recipe: Recipe, name: str) -> str:
    return "" if scorer_enabled(recipe, name) else f" SWITCHED OFF by the recipe (scorers: {{{name}: false}}): writes no rows."


def build_image_scores(recipe: Recipe, profile: str, scorers: tuple[str, ...] = IMAGE_SCORERS):
    """The `image_scores` step making the assets in `scorers` (default: all three)."""
    unknown = set(scorers) - set(IMAGE_SCORERS)
    if unknown or not scorers:
        raise ValueError(f"image scorers must be a non-empty subset of {IMAGE_SCORERS}, got {scorers}")
    scorers = tuple(name for name in IMAGE_SCORERS if name in scorers)
    # every scorer's section, built or not: a recipe's run config may still carry a switched-off one
    configs = {name: config_class(name, recipe) for name in IMAGE_SCORERS}
    ImageScoresConfig = create_model(
        "ImageScoresConfig", __base__=Config,
        **{name: (cls, Field(default_factory=cls)) for name, cls in configs.items()},
    )
    specs = [
        AssetSpec(name, deps=[SAMPLED_FRAMES, CAPTIONS] if name == CLIP_SIMILARITY else [SAMPLED_FRAMES],
                  code_version=code_version(name, recipe, profile), group_name="scores",
                  kinds={"duckdb", "pytorch"}, description=DESCRIPTIONS[name] + _off_suffix(recipe, name),
                  skippable=True)
        for name in scorers
    ]
    checks = [AssetCheckSpec(f"{COLUMNS[name]}_in_range", asset=name) for name in scorers]

    @multi_asset(
        name=IMAGE_SCORES_OP, specs=specs, pool=MODEL_POOL, check_specs=checks, partitions_def=shard_partitions, can_subset=True,
        description="Decodes the shard's sampled frames once (thread pool) and feeds every selected image scorer.",
    )
    def image_scores(context: AssetExecutionContext, config: ImageScoresConfig, curation_store: CurationStore,
                     models: ModelResource):
        started, store, settings = time.perf_counter(), curation_store.store(), models.settings()
        shard, budget_mb = context.partition_key, chunk_budget_mb()  # a bad setting fails before any model loads
        selected = [name for name in scorers if AssetKey(name) in context.selected_asset_keys]
        # a scorer the recipe switched off loads nothing and writes an empty shard (green, not stale)
        for name in [n for n in selected if not scorer_enabled(recipe, n)]:
            selected.remove(name)
            empty = to_frame([], _schema(COLUMNS[name]))
            yield write_switched_off(context, store, name, _schema(COLUMNS[name]), started,
                                     [_range_check(name, empty, COLUMNS[name], *RANGES[name])], asset_key=name)
        # every model first, before any decoding: a missing one fails its asset whole
        loaded, failures = {}, {}
        for name in selected:
            try:
                loaded[name] = SCORERS[name][0](getattr(config, name), settings)
            except Exception as exc:
                failures[name] = exc
                context.log.error(f"{name}[{shard}]: model could not be loaded: {type(exc).__name__}: {exc}")
        captions = {}
        if CLIP_SIMILARITY in loaded:
            captions = {r["video_id"]: r["caption"] for r in store.read_shard(CAPTIONS, shard).iter_rows(named=True)
                        if r["caption"]}
        frames_by_id = shard_frames(store, shard)
        needs_all = bool({AESTHETICS, OCR_AREA} & set(loaded))
        video_ids = list(frames_by_id) if needs_all else [vid for vid in frames_by_id if vid in captions]
        if CLIP_SIMILARITY in loaded:  # captioned videos missing from sampled_frames still get their error row
            video_ids += [vid for vid in sorted(captions) if vid not in frames_by_id]
        # the shard's videos in chunks of bounded decoded size (the next decoding while one is
        # scored): memory no longer grows with the shard's clip count (frames/chunks.py)
        chunks = FrameChunks(frames_by_id, video_ids, budget_mb, load_videos_frames)
        failed_rows = {name: [] for name in loaded}  # per table: error rows first, as today
        scored_rows = {name: [] for name in loaded}
        produced, scoring_seconds = {}, dict.fromkeys(loaded, 0.0)
        for ready, errors in (chunks if loaded else ()):
            for name, model in loaded.items():
                scored_started = time.perf_counter()
                rows, model_id, row_profile = SCORERS[name][1](model, getattr(config, name), settings, ready, errors,
                                                               captions)
                produced[name] = (model_id, row_profile)
                for row in rows:
                    (failed_rows if row["video_id"] in errors else scored_rows)[name].append(row)
                scoring_seconds[name] += time.perf_counter() - scored_started
        shared_meta = {"frames_decoded": chunks.frames_decoded,
                       "frames_decode_seconds": round(chunks.decode_seconds, 3),
                       "assets_in_step": ", ".join(selected),
                       "frame_chunks": len(chunks.plan), "frame_chunk_budget_mb": chunks.budget_mb,
                       "largest_chunk_videos": chunks.largest_chunk_videos,
                       "frames_resident_peak": chunks.peak_resident_frames}
        # rows in the order one whole-shard pass wrote them: videos with nothing to decode, then
        # those whose frames failed to decode, then the scored ones (each in shard order)
        nothing = {vid for vid in video_ids if video_frame_bytes(frames_by_id.get(vid)) == 0}
        for name, model in loaded.items():
            model_id, row_profile = produced[name]
            failed = sorted(failed_rows[name], key=lambda row: row["video_id"] not in nothing)  # stable
            frame = to_frame(failed + scored_rows[name], _schema(COLUMNS[name]))
            low, high = RANGES[name]
            yield write_shard(context, store, name, frame, started,
                              {**model_metadata(model_id, row_profile), **shared_meta, **model_actors.placement_metadata(model),
                               "scoring_seconds": round(scoring_seconds[name], 3)},
                              check_results=[_range_check(name, frame, COLUMNS[name], low, high)], asset_key=name)
        if failures:
            name, exc = next(iter(failures.items()))
            raise RuntimeError(f"{', '.join(failures)} not materialized: {name}: {type(exc).__name__}: {exc}") from exc

    return image_scores
