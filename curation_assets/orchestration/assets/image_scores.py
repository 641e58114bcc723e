"""Every score that reads the sampled frames (declared with reads=FRAMES): CLIP similarity,
aesthetics, OCR area, and any plugin's.

One step (`image_scores`) makes all their assets so that a shard's frame files are decoded
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

import polars as pl
from dagster import AssetCheckSpec, AssetExecutionContext, AssetKey, AssetSpec, Config, multi_asset
from pydantic import Field, create_model

from curation_assets.execution import model_actors
from curation_assets.frames.chunks import FrameChunks, chunk_budget_mb, video_frame_bytes
from curation_assets.orchestration.assets.captions import CAPTIONS
from curation_assets.orchestration.assets.score_assets import off_note, params_config, range_check, score_kinds
from curation_assets.orchestration.assets.shard_io import (
    SAMPLED_FRAMES, load_videos_frames, model_metadata, shard_frames, to_frame, write_shard, write_switched_off,
)
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.pools import MODEL_POOL
from curation_assets.orchestration.recipe import Recipe, code_version, scorer_enabled
from curation_assets.orchestration.resources import CurationStore, ModelResource
from curation_assets.scores import FRAMES, all_scores

IMAGE_SCORES_OP = "image_scores"


def frame_scores() -> dict:
    """name -> declaration of every FRAMES score, in declaration order."""
    return {decl.name: decl for decl in all_scores() if decl.reads == FRAMES}


def build_image_scores(recipe: Recipe, profile: str, scorers: tuple[str, ...] | None = None):
    """The `image_scores` step making the assets in `scorers` (default: every FRAMES score)."""
    declared = frame_scores()
    scorers = tuple(declared) if scorers is None else scorers
    unknown = set(scorers) - set(declared)
    if unknown or not scorers:
        raise ValueError(f"image scorers must be a non-empty subset of {tuple(declared)}, got {scorers}")
    scorers = tuple(name for name in declared if name in scorers)
    # every scorer's section, built or not: a recipe's run config may still carry a switched-off one
    configs = {name: params_config(decl, recipe) for name, decl in declared.items()}
    ImageScoresConfig = create_model(
        "ImageScoresConfig", __base__=Config,
        **{name: (cls, Field(default_factory=cls)) for name, cls in configs.items()},
    )
    specs = [
        AssetSpec(name, deps=[SAMPLED_FRAMES, CAPTIONS] if declared[name].needs_caption else [SAMPLED_FRAMES],
                  code_version=code_version(name, recipe, profile), group_name="scores",
                  kinds=score_kinds(declared[name]), description=declared[name].description + off_note(declared[name], recipe),
                  skippable=True)
        for name in scorers
    ]
    checks = [AssetCheckSpec(declared[name].range_check, asset=name) for name in scorers]

    @multi_asset(
        name=IMAGE_SCORES_OP, specs=specs, pool=MODEL_POOL, check_specs=checks, partitions_def=shard_partitions, can_subset=True,
        description="Decodes the shard's sampled frames once (thread pool) and feeds every selected frame score.",
    )
    def image_scores(context: AssetExecutionContext, config: ImageScoresConfig, curation_store: CurationStore,
                     models: ModelResource):
        started, store, settings = time.perf_counter(), curation_store.store(), models.settings()
        shard, budget_mb = context.partition_key, chunk_budget_mb()  # a bad setting fails before any model loads
        selected = [name for name in scorers if AssetKey(name) in context.selected_asset_keys]
        # a scorer the recipe switched off loads nothing and writes an empty shard (green, not stale)
        for name in [n for n in selected if not scorer_enabled(recipe, n)]:
            selected.remove(name)
            schema = declared[name].table_schema()
            yield write_switched_off(context, store, name, schema, started,
                                     [range_check(declared[name], to_frame([], schema))], asset_key=name)
        # every model first, before any decoding: a missing one fails its asset whole
        loaded, failures = {}, {}
        for name in selected:
            decl = declared[name]
            params = getattr(config, name) if decl.config is not None else None
            try:
                loaded[name] = decl.load_model(params, settings) if decl.load_model is not None else None
            except Exception as exc:
                failures[name] = exc
                context.log.error(f"{name}[{shard}]: model could not be loaded: {type(exc).__name__}: {exc}")
        captions = {}
        if any(declared[name].needs_caption for name in loaded):
            captions = {r["video_id"]: r["caption"] for r in store.read_shard(CAPTIONS, shard).iter_rows(named=True)
                        if r["caption"]}
        frames_by_id = shard_frames(store, shard)
        needs_all = any(not declared[name].needs_caption for name in loaded)
        video_ids = list(frames_by_id) if needs_all else [vid for vid in frames_by_id if vid in captions]
        if captions:  # captioned videos missing from sampled_frames still get their error row
            video_ids += [vid for vid in sorted(captions) if vid not in frames_by_id]
        # the shard's videos in chunks of bounded decoded size (the next decoding while one is
        # scored): memory no longer grows with the shard's clip count (frames/chunks.py)
        chunks = FrameChunks(frames_by_id, video_ids, budget_mb, load_videos_frames)
        failed_rows = {name: [] for name in loaded}  # per table: error rows first, as one whole-shard pass wrote them
        scored_rows = {name: [] for name in loaded}
        scoring_seconds = dict.fromkeys(loaded, 0.0)
        for ready, errors in (chunks if loaded else ()):
            for name, model in loaded.items():
                decl = declared[name]
                params = getattr(config, name) if decl.config is not None else None
                scored_started = time.perf_counter()
                for row in decl.compute(model, params, settings, ready, errors, captions):
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
            decl = declared[name]
            failed = sorted(failed_rows[name], key=lambda row: row["video_id"] not in nothing)  # stable
            frame = to_frame(failed + scored_rows[name], decl.table_schema())
            meta = {"scoring_seconds": round(scoring_seconds[name], 3), **shared_meta}
            if decl.model:
                model_id, row_profile = _model_of(frame, model, settings)
                meta = {**model_metadata(model_id, row_profile), **meta, **model_actors.placement_metadata(model)}
            yield write_shard(context, store, name, frame, started, meta,
                              check_results=[range_check(decl, frame)], asset_key=name)
        if failures:
            name, exc = next(iter(failures.items()))
            raise RuntimeError(f"{', '.join(failures)} not materialized: {name}: {type(exc).__name__}: {exc}") from exc

    return image_scores


def _model_of(frame: pl.DataFrame, model, settings) -> tuple[str, str]:
    """(model id, profile) a model score recorded in its rows (OCR's are real in every profile)."""
    if frame.height:
        first = frame.row(0, named=True)
        if first.get("model"):
            return first["model"], first.get("profile") or settings.profile
    return str(getattr(model, "model_id", None) or "unknown"), settings.profile
