"""What a score is, said once.

Everything that used to list the scores by hand (thresholds, recipe switches, code versions,
the scores a verdict needs, curated_videos' inputs and columns, the report's histograms,
the training set's ranking weights, the weights pre-flight, the docs' score table) reads
the declarations instead, as data-juicer's operators keep their stats keys in one place.
A new per-clip score with a threshold is its scorer function, its declaration and its test;
a package installed beside the project adds its own through an entry point (registry.py).

How a score is computed depends on what it reads (`reads`):
- PROBE: the clip's raw_videos row (stream header; nothing decoded), one value per clip;
- CAPTION: the clip's caption text (clips without a caption get no row);
- FRAMES: the clip's sampled frames; every FRAMES score of a recipe runs in one step that
  decodes the shard's frame files once for all of them (the `image_scores` step);
- DECODE_PASS: inside the one sequential decode of each video (built in: motion only).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

PROBE, CAPTION, FRAMES, DECODE_PASS = "probe", "caption", "frames", "decode_pass"
READS = (PROBE, DECODE_PASS, CAPTION, FRAMES)  # in pipeline order: missing scores are named in it
PLUGIN_READS = (PROBE, CAPTION, FRAMES)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Bound:
    """A threshold on one score column: a clip whose value is below a `min` or above a `max`
    is rejected, naming the rule `<column><op><bound>` (e.g. `motion_score<0.25`).

    key: the recipe key (`curated_videos.thresholds.<key>`); None as a value switches it off.
    column: the curated_videos column bounded (default: the score's first value column).
    kind: int for whole-number bounds (pixels): the recipe hash keeps `256`, not `256.0`.
    """

    key: str
    op: Literal["min", "max"]
    default: float | int | None = None
    description: str = ""
    column: str | None = None
    kind: type = float

    @property
    def fails(self) -> str:
        """The comparison that fails the rule, as it appears in a reason."""
        return "<" if self.op == "min" else ">"


@dataclass(frozen=True)
class ScoreDeclaration:
    """One per-clip score.

    name: asset, table and recipe section (its parameters: `<name>: {...}`).
    columns: the score table's own columns (the builder adds video_id, params when there is
      a config, model/profile for a model score, and error), with their polars types.
    values: curated_videos column -> score table column, for the values a verdict, the report
      and the ranking read (default: the first column, under its own name).
    bounds: its thresholds. valid_range: what a correct value can be (the asset's range
      check); threshold_range: where a suggested threshold may lie (default: valid_range).
    config: the Dagster Config class of its parameters (None: none); they feed the code
      version, so changing one re-scores exactly this score. revision: bump when the code
      changes its output.
    needs_caption: only captioned clips get, and need, this score.
    model: it runs a learned model (its code version carries the model profile); weights:
      settings -> the weights it needs as models.inventory rows, for the pre-flight.
      weights_in_every_profile: the tiny profile still loads the real weights (OCR).
      noise_under_tiny: with the tiny profile its values are noise: its bounds are skipped,
      no threshold is suggested and the report greys it out.
    switchable: a recipe may switch it off (`scorers: {<name>: false}`).
    rank_weight / rank_direction: its default weight in the training set's composite rank
      and whether higher (+1) or lower (-1) is better (default: lower when it has only
      `max` bounds).
    compute: the scorer, by `reads`:
      PROBE:   fn(raw_videos row: dict, config) -> {column: value}
      CAPTION: fn(caption: str, config) -> {column: value}
      FRAMES:  score_frames(model, config, settings, ready, errors, captions) -> rows, with
               ready = [(video_id, [RGB frames])], errors = {video_id: reason}; use
               `per_video` for a plain fn(frames, config) -> {column: value}
      DECODE_PASS: None (the video_pass step computes motion)
    load_model: FRAMES with a model: (config, settings) -> the loaded model, before any frame.
    """

    name: str
    description: str
    reads: str
    columns: Mapping[str, Any]
    revision: str
    values: Mapping[str, str] = field(default_factory=dict)
    bounds: tuple[Bound, ...] = ()
    valid_range: tuple[float | None, float | None] = (None, None)
    threshold_range: tuple[float | None, float | None] | None = None
    config: type | None = None
    needs_caption: bool = False
    model: bool = False
    weights: Callable[..., list] | None = None
    weights_in_every_profile: bool = False
    noise_under_tiny: bool = False
    switchable: bool = False
    rank_weight: float = 0.0
    rank_direction: int | None = None
    compute: Callable | None = None
    load_model: Callable | None = None
    check_name: str | None = None
    kinds: frozenset[str] = frozenset()
    origin: str = "built in"  # a plugin's entry point, for messages

    # ---- derived names ---------------------------------------------------------------------
    @property
    def value_columns(self) -> dict[str, str]:
        """curated_videos column -> score table column."""
        if self.values:
            return dict(self.values)
        first = next(iter(self.columns))
        return {first: first}

    @property
    def value(self) -> str:
        """The first value's curated_videos column (what a single-valued score is called)."""
        return next(iter(self.value_columns))

    def bound_column(self, bound: Bound) -> str:
        return bound.column or self.value

    @property
    def direction(self) -> int:
        if self.rank_direction is not None:
            return self.rank_direction
        return -1 if self.bounds and all(b.op == "max" for b in self.bounds) else +1

    @property
    def suggest_range(self) -> tuple[float | None, float | None]:
        return self.threshold_range if self.threshold_range is not None else self.valid_range

    @property
    def range_check(self) -> str:
        return self.check_name or f"{self.value}_in_range"

    @property
    def bound_keys(self) -> tuple[str, ...]:
        return tuple(b.key for b in self.bounds)

    def table_schema(self) -> dict[str, Any]:
        """The score table's columns in order: video_id, its own, model/profile, params, error."""
        import polars as pl

        schema = {"video_id": pl.Utf8, **self.columns}
        if self.model:
            schema.update(model=pl.Utf8, profile=pl.Utf8)
        if self.reads == CAPTION:
            schema["caption_source"] = pl.Utf8
        if self.config is not None:
            schema["params"] = pl.Utf8
        schema["error"] = pl.Utf8
        return schema

    def params_json(self, config: Any) -> str | None:
        """The parameters a row records (the config's values), or None without a config."""
        if self.config is None or config is None:
            return None
        return params_json(config.model_dump(mode="json"))


def params_json(params: Any) -> str:
    """The parameters a row records, as stable JSON."""
    return json.dumps(params, sort_keys=True, default=str)


def per_video(fn: Callable[[list, Any], Mapping[str, Any]]) -> Callable:
    """A FRAMES scorer from a plain per-clip function fn(frames, config) -> {column: value}:
    one clip whose function raises gets an error row, the others go on."""

    def score_frames(model, config, settings, ready, errors, captions):
        base = {"params": params_json(config.model_dump(mode="json"))} if config is not None else {}
        rows = [{"video_id": vid, "error": reason, **base} for vid, reason in errors.items()]
        for vid, frames in ready:
            try:
                values = dict(fn(frames, config))
            except Exception as exc:  # one bad clip must not cost the shard
                rows.append({"video_id": vid, "error": f"{type(exc).__name__}: {str(exc)[:300]}", **base})
                continue
            rows.append({"video_id": vid, **values, "error": None, **base})
        return rows

    score_frames.per_video = fn
    return score_frames


class DeclarationError(ValueError):
    """A declaration that cannot work; the message is one line naming it."""


def check_declaration(decl: ScoreDeclaration, plugin: bool) -> None:
    """Refuse what would fail later, in one line: names, columns, bounds, the scorer."""
    who = f"score {decl.name!r} ({decl.origin})"
    if not isinstance(decl.name, str) or not _NAME.match(decl.name):
        raise DeclarationError(f"{who}: name must be lower_snake_case letters, digits and _")
    if decl.reads not in (PLUGIN_READS if plugin else READS):
        allowed = ", ".join(PLUGIN_READS if plugin else READS)
        raise DeclarationError(f"{who}: reads={decl.reads!r}; expected one of {allowed}")
    if not decl.columns:
        raise DeclarationError(f"{who}: declares no columns")
    reserved = {"video_id", "params", "error", "model", "profile", "shard", "code_version", "caption_source"}
    clash = sorted(set(decl.columns) & reserved)
    if clash:
        raise DeclarationError(f"{who}: columns {clash} are added by the builder; rename them")
    for curated, column in decl.value_columns.items():
        if column not in decl.columns:
            raise DeclarationError(f"{who}: value {curated!r} reads column {column!r}, which is not declared")
    for bound in decl.bounds:
        if bound.op not in ("min", "max"):
            raise DeclarationError(f"{who}: bound {bound.key!r} has op {bound.op!r}; expected 'min' or 'max'")
        if decl.bound_column(bound) not in decl.value_columns:
            raise DeclarationError(f"{who}: bound {bound.key!r} bounds {decl.bound_column(bound)!r}, not one of its "
                                   f"values {sorted(decl.value_columns)}")
    if not isinstance(decl.revision, str) or not decl.revision:
        raise DeclarationError(f"{who}: revision must be a non-empty string (bump it when the output changes)")
    if decl.reads != DECODE_PASS and not callable(decl.compute):
        raise DeclarationError(f"{who}: compute must be the scorer function (see ScoreDeclaration.compute)")
    if decl.load_model is not None and decl.reads != FRAMES:
        raise DeclarationError(f"{who}: load_model is for FRAMES scores only")
    if decl.config is not None:
        from dagster import Config

        if not (isinstance(decl.config, type) and issubclass(decl.config, Config)):
            raise DeclarationError(f"{who}: config must be a subclass of curation_assets.scores.ScoreConfig")
        try:
            decl.config()
        except Exception as exc:
            raise DeclarationError(f"{who}: its config has no valid defaults: {str(exc).splitlines()[0]}") from None
    if decl.direction not in (+1, -1):
        raise DeclarationError(f"{who}: rank_direction must be +1 or -1")
