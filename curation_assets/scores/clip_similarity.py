"""clip_similarity: CLIP cosine similarity of each sampled frame with the clip's caption."""

from __future__ import annotations

from typing import Literal

import polars as pl
from dagster import Config
from pydantic import Field

from curation_assets.scores.declaration import FRAMES, Bound, ScoreDeclaration, params_json
from curation_assets.scores.frame_rows import error_rows, flatten, reduced_row


class ClipSimilarityConfig(Config):
    model_name: str = Field("ViT-B-32", description="open_clip architecture.")
    pretrained: str = Field("openai", description="open_clip pretrained tag (ViT-B-32/openai = openai/clip-vit-base-patch32).")
    reduce_mode: Literal["avg", "max", "min"] = Field("avg", description="How per-frame similarities become one score.")


def load(config: ClipSimilarityConfig, settings):
    from curation_assets.execution import model_actors
    from curation_assets.models.clip import load_clip

    return model_actors.load_model(load_clip, config.model_name, config.pretrained, settings)


def score_frames(encoder, config: ClipSimilarityConfig, settings, ready, errors, captions) -> list[dict]:
    from curation_assets.models.clip import frame_text_similarity

    base = {"model": f"open_clip:{config.model_name}/{config.pretrained}", "profile": settings.profile,
            "params": params_json({"reduce_mode": config.reduce_mode})}
    ready = [(vid, frames) for vid, frames in ready if vid in captions]  # clips without a caption have no row
    rows = error_rows(errors, base, only=captions)
    if ready:
        images, owners = flatten(ready)
        image_emb = encoder.encode_images(images)
        text_emb = encoder.encode_texts([captions[vid] for vid, _ in ready])
        for i, (vid, _) in enumerate(ready):
            per_frame = frame_text_similarity(image_emb[owners == i], text_emb[i])
            rows.append(reduced_row(vid, "clip_similarity", per_frame, config.reduce_mode, base))
    return rows


def weights(settings, config: ClipSimilarityConfig) -> list:
    from curation_assets.models.inventory import clip_weights

    return [clip_weights(settings, config.model_name, config.pretrained)]


CLIP_SIMILARITY = ScoreDeclaration(
    name="clip_similarity",
    description="CLIP ViT-B/32 cosine between the sampled frames and the caption. Normalized CLIP image and caption "
    "embeddings per sampled frame, reduced per video (avg by default). Videos without a caption have no row.",
    reads=FRAMES,
    columns={"clip_similarity": pl.Float64, "frame_scores": pl.List(pl.Float64)},
    bounds=(Bound("clip_similarity_min", "min", 0.2, "CLIP ViT-B/32 cosine; matching frame/caption pairs score "
                  "~0.25-0.35, unrelated ~0.1-0.18."),),
    valid_range=(-1.0, 1.0),
    config=ClipSimilarityConfig,
    revision="3",  # 2: batched tensor preprocessing (within one grey level of PIL's); 3: sampled_frames v2
    needs_caption=True,
    model=True,
    weights=weights,
    noise_under_tiny=True,
    switchable=True,
    rank_weight=0.3,
    compute=score_frames,
    load_model=load,
    kinds=frozenset({"pytorch"}),
)
