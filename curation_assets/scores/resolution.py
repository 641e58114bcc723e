"""resolution: coded and displayed size, fps and duration from the stream header (nothing decoded)."""

from __future__ import annotations

import polars as pl

from curation_assets.scores.declaration import PROBE, Bound, ScoreDeclaration

_COLUMNS = {"path": pl.Utf8, "width": pl.Int64, "height": pl.Int64, "rotation": pl.Int64, "display_width": pl.Int64,
            "display_height": pl.Int64, "fps": pl.Float64, "frame_count": pl.Int64, "duration_s": pl.Float64}


def from_probe(row: dict, config) -> dict:
    """The probe already read the header (raw_videos): the score is a copy of its fields."""
    return {column: row[column] for column in _COLUMNS}


RESOLUTION = ScoreDeclaration(
    name="resolution",
    description="Display size after rotation, from the stream header. Also the coded width/height (as data-juicer "
    "reports them), fps and duration; nothing is decoded. The bounds apply to the display size.",
    reads=PROBE,
    columns=_COLUMNS,
    values={"width": "display_width", "height": "display_height"},
    bounds=(
        Bound("width_min", "min", 256, "Display width (after rotation); 256 = the smallest LoRA preset.", "width", int),
        Bound("width_max", "max", None, "", "width", int),
        Bound("height_min", "min", 256, "", "height", int),
        Bound("height_max", "max", None, "", "height", int),
    ),
    valid_range=(1, None),
    revision="1",
    compute=from_probe,
    check_name="positive_dimensions",
)
