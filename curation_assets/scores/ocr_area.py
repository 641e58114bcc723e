"""ocr_area: the share of each sampled frame covered by detected text (data-juicer's video_ocr_area_ratio)."""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np
import polars as pl
from dagster import Config
from pydantic import Field

from curation_assets.scores.declaration import FRAMES, Bound, ScoreDeclaration, params_json
from curation_assets.scores.frame_rows import error_rows, flatten, reduced_row


class OcrAreaConfig(Config):
    languages: list[str] = Field(default_factory=lambda: ["en"], description="EasyOCR languages (detector only).")
    max_side: Optional[int] = Field(
        None, gt=0, description="Detect on frames downscaled to this long side (faster; see docs/scores.md for the tolerance)."
    )
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Detector arithmetic: auto = bfloat16 on CPUs with native bfloat16 (about 2x, ratios "
        "within 0.002 of float32), else float32; float32 = data-juicer's exact path.",
    )


def load(config: OcrAreaConfig, settings):
    from curation_assets.execution import model_actors
    from curation_assets.models.ocr import load_text_detector

    return model_actors.load_model(load_text_detector, settings, languages=tuple(config.languages),
                                   max_side=config.max_side, precision=config.precision)


def score_frames(detector, config: OcrAreaConfig, settings, ready, errors, captions) -> list[dict]:
    from curation_assets.execution.model_actors import RayStepError

    # OCR weights are real in every profile: the detector ships in a pip package
    base = {"model": detector.model_id, "profile": "real", "params": params_json(config.model_dump())}
    rows = error_rows(errors, base)
    if not ready:
        return rows
    images, owners = flatten(ready)
    try:  # the whole chunk at once: the detector overlaps its per-frame CPU work across frames
        ratios = np.asarray(detector.area_ratios(images), dtype=np.float64)
        per_video = [ratios[owners == i] for i in range(len(ready))]
    except RayStepError:
        raise  # a lost node is no OCR error of any video: the step fails whole and is re-run
    except Exception:  # find the video(s) at fault: one failing video must not fail the shard
        per_video = []
        for _, frames in ready:
            try:
                per_video.append(detector.area_ratios(frames))
            except RayStepError:
                raise
            except Exception as exc:
                per_video.append(exc)
    for (vid, _), values in zip(ready, per_video):
        if isinstance(values, Exception):
            rows.append({"video_id": vid, "error": f"{type(values).__name__}: {str(values)[:300]}", **base})
        else:
            rows.append(reduced_row(vid, "ocr_area_ratio", values, "avg", base))
    return rows


def weights(settings, config) -> list:
    from curation_assets.models.inventory import ocr_weights

    return [ocr_weights()]


OCR_AREA = ScoreDeclaration(
    name="ocr_area",
    description="Share of the frame covered by detected text (EasyOCR's CRAFT detector). data-juicer's "
    "video_ocr_area_ratio: text boxes' area over the frame's, mean over the sampled frames.",
    reads=FRAMES,
    columns={"ocr_area_ratio": pl.Float64, "frame_scores": pl.List(pl.Float64)},
    bounds=(Bound("ocr_area_ratio_max", "max", 0.1, "Share of the frame covered by text boxes; burnt-in titles and "
                  "subtitles score 0.05-0.3."),),
    # overlapping boxes can sum past the frame area, as in data-juicer
    valid_range=(0.0, 2.0),
    threshold_range=(0.0, 1.0),
    config=OcrAreaConfig,
    revision="3",  # 2: bfloat16 on CPUs that do it natively; 3: data-juicer's frames
    model=True,
    weights=weights,
    weights_in_every_profile=True,
    switchable=True,
    rank_weight=0.1,
    compute=score_frames,
    load_model=load,
    kinds=frozenset({"pytorch"}),
)
