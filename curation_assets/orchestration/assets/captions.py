import time

import polars as pl
from dagster import AssetExecutionContext, asset

from curation_assets.orchestration.assets.shard_io import (
    RAW_VIDEOS, SAMPLED_FRAMES, frames_or_error, model_metadata, primary_videos, shard_frames, to_frame, write_shard,
)
from curation_assets.orchestration.pools import MODEL_POOL
from curation_assets.orchestration.partitions import shard_partitions
from curation_assets.orchestration.recipe import Recipe, code_version, config_class, scorer_enabled
from curation_assets.orchestration.resources import CurationStore, ModelResource
from curation_assets.execution import model_actors
from curation_assets.scorers.caption_text import clean_caption

CAPTIONS = "captions"
CAPTIONS_SCHEMA = {
    "video_id": pl.Utf8,
    "caption": pl.Utf8,
    "source": pl.Utf8,  # original | generated | missing
    "original_caption": pl.Utf8,
    "model": pl.Utf8,
    "profile": pl.Utf8,
    "error": pl.Utf8,
}


def build_captions(recipe: Recipe, profile: str):
    CaptionsConfig = config_class(CAPTIONS, recipe)
    # `scorers: {captions: false}`: the captioner is off (never loaded); manifest captions still count
    captioner_on = scorer_enabled(recipe, CAPTIONS)

    @asset(
        name=CAPTIONS,
        pool=MODEL_POOL,  # one model step at a time per instance (see image_scores.MODEL_POOL)
        deps=[RAW_VIDEOS, SAMPLED_FRAMES],
        partitions_def=shard_partitions,
        code_version=code_version(CAPTIONS, recipe, profile),
        group_name="captions",
        kinds={"parquet", "duckdb", "pytorch"},
        description="The manifest caption (special tokens removed) when usable; otherwise one generated from "
        "the sampled frames by a video captioner (VideoBLIP by default). `source` says which."
        + ("" if captioner_on else " The captioner is SWITCHED OFF by the recipe: manifest captions only."),
    )
    def captions(context: AssetExecutionContext, config: CaptionsConfig, curation_store: CurationStore,
                 models: ModelResource):
        started = time.perf_counter()
        store = curation_store.store()
        shard = context.partition_key
        rows, to_generate = [], []
        recaption_all = config.recaption_all and captioner_on
        generate = captioner_on and (config.generate_missing or config.recaption_all)
        for video in primary_videos(store, shard).iter_rows(named=True):
            original = clean_caption(video["source_caption"])
            row = {"video_id": video["video_id"], "original_caption": original, "caption": None, "model": None,
                   "profile": None, "error": None}
            if original and not recaption_all:
                row.update(caption=original, source="original")
            elif generate:
                row["source"] = "generated"
                to_generate.append(row)
            else:
                row["source"] = "missing"
            rows.append(row)

        settings = models.settings()
        placement = {}
        if to_generate:
            placement = _generate(config, settings, to_generate, shard_frames(store, shard))
        frame = to_frame(rows, CAPTIONS_SCHEMA)
        meta = {f"source_{k}": int(v) for k, v in frame["source"].value_counts().iter_rows()} if frame.height else {}
        if to_generate:
            meta.update(model_metadata(config.model_id, settings.profile), **placement)
        if not captioner_on:
            meta["switched_off"] = "the captioner, by the recipe: scorers: {captions: false}"
        return write_shard(context, store, CAPTIONS, frame, started, meta)

    return captions


def _generate(config, settings, rows: list[dict], frames_by_id: dict) -> dict:
    from curation_assets.models.videoblip import load_captioner

    # Load before the loop: missing weights fail the asset whole, with no partial rows.
    captioner = model_actors.load_model(load_captioner, config.model_id, settings)
    batch_size = captioner.batch_size  # chosen for the device (videoblip.caption_batch_size)
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        ready, clips = [], []
        for row in batch:
            row.update(model=config.model_id, profile=settings.profile)
            frames, error = frames_or_error(frames_by_id.get(row["video_id"]))
            if error:
                row["error"] = error
            else:
                ready.append(row)
                clips.append(frames)
        if not ready:
            continue
        try:
            texts = captioner.caption(clips, prompt=config.prompt, max_new_tokens=config.max_new_tokens,
                                      num_beams=config.num_beams)
        except model_actors.RayStepError:
            raise  # a lost node is no caption error: the step fails whole and is re-run
        except Exception as exc:
            for row in ready:
                row["error"] = f"captioning failed: {type(exc).__name__}: {str(exc)[:200]}"
            continue
        for row, text in zip(ready, texts):
            text = clean_caption(text)
            if text:
                row["caption"] = text
            else:
                row["error"] = "the captioner returned an empty caption"
    return model_actors.placement_metadata(captioner)
