"""aesthetics: the LAION improved aesthetic predictor on each sampled frame."""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from dagster import Config
from pydantic import Field

from curation_assets.scores.declaration import FRAMES, Bound, ScoreDeclaration, params_json
from curation_assets.scores.frame_rows import error_rows, flatten, reduced_row


class AestheticsConfig(Config):
    reduce_mode: Literal["avg", "max", "min"] = Field("avg")


def load(config: AestheticsConfig, settings):
    from curation_assets.execution import model_actors
    from curation_assets.models.aesthetics import load_aesthetic_scorer

    return model_actors.load_model(load_aesthetic_scorer, settings)


def score_frames(scorer, config: AestheticsConfig, settings, ready, errors, captions) -> list[dict]:

    base = {"model": scorer.model_id, "profile": settings.profile,
            "params": params_json({"reduce_mode": config.reduce_mode})}
    rows = error_rows(errors, base)
    if ready:
        images, owners = flatten(ready)
        scores = np.asarray(scorer.score(images), dtype=np.float64)
        for i, (vid, _) in enumerate(ready):
            rows.append(reduced_row(vid, "aesthetics_score", scores[owners == i], config.reduce_mode, base))
    return rows


def weights(settings, config) -> list:
    from curation_assets.models.inventory import aesthetics_weights

    return aesthetics_weights(settings)


AESTHETICS = ScoreDeclaration(
    name="aesthetics",
    description="LAION aesthetic predictor v2 score / 10, averaged over the sampled frames. The improved aesthetic "
    "predictor (sac+logos+ava1-l14-linearMSE on normalized CLIP ViT-L/14 embeddings) per frame, reduced per video.",
    reads=FRAMES,
    columns={"aesthetics_score": pl.Float64, "frame_scores": pl.List(pl.Float64)},
    bounds=(Bound("aesthetics_score_min", "min", 0.4, "LAION aesthetic score / 10 (data-juicer's default 0.4)."),),
    # the head is a regression, not a bounded one: a real clip can land slightly outside 0..1
    valid_range=(-1.0, 2.0),
    threshold_range=(0.0, 1.0),
    config=AestheticsConfig,
    revision="3",  # as clip_similarity
    model=True,
    weights=weights,
    noise_under_tiny=True,
    switchable=True,
    rank_weight=0.4,
    compute=score_frames,
    load_model=load,
    kinds=frozenset({"pytorch"}),
)
