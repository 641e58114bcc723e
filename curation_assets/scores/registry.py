"""Every score of this installation: the built-in declarations, then the plugins'.

A plugin is any installed package that names its declarations under the entry-point group
`curation_assets.scores`, e.g. in its pyproject.toml:

    [project.entry-points."curation_assets.scores"]
    letterbox = "letterbox_score:LETTERBOX"

The entry point resolves to a ScoreDeclaration (or a list of them). Plugins are loaded once
per process, when the first caller asks; a plugin that fails to import or declares a score
that cannot work raises PluginError, one line naming the plugin, so the CLI and the Dagster
code location fail at start-up instead of mid-run.
"""

from __future__ import annotations

import functools
from importlib import metadata

from curation_assets.scores.declaration import DeclarationError, ScoreDeclaration, check_declaration

ENTRY_POINT_GROUP = "curation_assets.scores"
# Names of the pipeline's other assets and tables: a score may not take them.
RESERVED_NAMES = frozenset({
    "shots", "raw_videos", "video_pass", "sampled_frames", "captions", "image_scores", "video_hashes",
    "near_duplicates", "curated_videos", "accelerated_videos", "lora_training_set", "score_report",
    "video_registry", "shard_writes", "scorers",
})
# Threshold keys that are not a score's bound, and curated_videos columns that are not a score's.
RESERVED_KEYS = frozenset({"require_caption"})
CURATED_COLUMNS = frozenset({
    "path", "video_id", "status", "reasons", "caption_source", "caption", "model_profile", "scorers_off",
    "thresholds", "error", "source_video_id", "source_path", "near_duplicate_of", "start_s", "end_s", "shard",
    "code_version",
})


class PluginError(RuntimeError):
    """A score plugin that cannot be used; the message is one line naming it."""


def builtin_scores() -> list[ScoreDeclaration]:
    # Declaration order is the order of their columns in curated_videos and of broken rules
    # in a reason list (motion first, as data-juicer's recipes list it).
    from curation_assets.scores.aesthetics import AESTHETICS
    from curation_assets.scores.caption_repetition import CAPTION_REPETITION
    from curation_assets.scores.clip_similarity import CLIP_SIMILARITY
    from curation_assets.scores.motion import MOTION
    from curation_assets.scores.ocr_area import OCR_AREA
    from curation_assets.scores.resolution import RESOLUTION

    return [MOTION, RESOLUTION, CAPTION_REPETITION, CLIP_SIMILARITY, AESTHETICS, OCR_AREA]


@functools.cache
def all_scores() -> tuple[ScoreDeclaration, ...]:
    """Built-in scores, then the plugins' (in entry-point name order), validated together."""
    scores = builtin_scores()
    for decl in scores:
        check_declaration(decl, plugin=False)
    scores += _plugin_scores()
    _check_unique(scores)
    return tuple(scores)


def score(name: str) -> ScoreDeclaration:
    for decl in all_scores():
        if decl.name == name:
            return decl
    raise KeyError(f"no score {name!r} (known: {', '.join(d.name for d in all_scores())})")


def score_names() -> list[str]:
    return [decl.name for decl in all_scores()]


def _plugin_scores() -> list[ScoreDeclaration]:
    found = []
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = f" in {ep.dist.name} {ep.dist.version}" if ep.dist is not None else ""
        where = f"score plugin {ep.name!r} ({ep.value}{dist})"
        try:
            loaded = ep.load()
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise PluginError(f"{where}: cannot be imported: {type(exc).__name__}: {first}") from None
        declarations = [loaded] if isinstance(loaded, ScoreDeclaration) else loaded
        try:
            declarations = list(declarations)
        except TypeError:
            declarations = [declarations]
        for decl in declarations:
            if not isinstance(decl, ScoreDeclaration):
                raise PluginError(f"{where}: names {type(decl).__name__}, not a ScoreDeclaration")
            decl = _with_origin(decl, f"plugin {ep.name}{dist}")
            try:
                check_declaration(decl, plugin=True)
            except DeclarationError as exc:
                raise PluginError(f"{where}: {exc}") from None
            found.append(decl)
    return found


def _with_origin(decl: ScoreDeclaration, origin: str) -> ScoreDeclaration:
    from dataclasses import replace

    return replace(decl, origin=origin)


def _check_unique(scores: list[ScoreDeclaration]) -> None:
    names: dict[str, ScoreDeclaration] = {}
    keys: dict[str, ScoreDeclaration] = {}
    columns: dict[str, ScoreDeclaration] = {}
    for decl in scores:
        plugin = decl.origin != "built in"
        fail = PluginError if plugin else DeclarationError
        if decl.name in RESERVED_NAMES or decl.name in names:
            other = names.get(decl.name)
            raise fail(f"score {decl.name!r} ({decl.origin}): the name is taken"
                       + (f" by {other.origin}" if other else " by a pipeline asset"))
        names[decl.name] = decl
        for key in decl.bound_keys:
            if key in keys or key in RESERVED_KEYS:
                raise fail(f"score {decl.name!r} ({decl.origin}): threshold key {key!r} is taken"
                           + (f" by score {keys[key].name!r}" if key in keys else ""))
            keys[key] = decl
        for column in decl.value_columns:
            if column in CURATED_COLUMNS:
                raise fail(f"score {decl.name!r} ({decl.origin}): curated_videos already has a column {column!r}")
            if column in columns:
                raise fail(f"score {decl.name!r} ({decl.origin}): curated_videos column {column!r} is taken by "
                           f"score {columns[column].name!r}")
            columns[column] = decl
