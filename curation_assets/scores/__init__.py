"""The scores, declared: one file per built-in score (its parameters, its declaration and the
glue to its scorer in `curation_assets.scorers` / `curation_assets.models`), and the registry
that adds the scores of installed plugins. See declaration.py for what a declaration holds
and docs/adding-a-score.md for how to add one.

For plugin authors: `from curation_assets.scores import ScoreDeclaration, Bound, ScoreConfig,
FRAMES, per_video`.
"""

from curation_assets.scores.declaration import (
    CAPTION, DECODE_PASS, FRAMES, PROBE, READS, Bound, DeclarationError, ScoreDeclaration, params_json, per_video,
)
from curation_assets.scores.registry import ENTRY_POINT_GROUP, PluginError, all_scores, score, score_names

__all__ = [
    "CAPTION", "DECODE_PASS", "ENTRY_POINT_GROUP", "FRAMES", "PROBE", "READS", "Bound", "DeclarationError", "PluginError",
    "ScoreConfig", "ScoreDeclaration", "all_scores", "params_json", "per_video", "score", "score_names",
]


def __getattr__(name: str):
    if name == "ScoreConfig":  # a score's parameters are a Dagster Config (the launchpad shows them)
        from dagster import Config

        return Config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
