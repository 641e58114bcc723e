"""Pre-flight: every model weight a run will need, checked before any video is decoded.

The loaders already fail at once when their weights are missing, but only when their step
starts: after the decode pass, one model at a time, each in its own stack trace. This
checks them all up front (files only: nothing is loaded, nothing imported from torch) and
names every missing one in one message, for the CLI before any shard starts and for a run
launched from the UI in its first step (raw_videos).
"""

from __future__ import annotations

from curation_assets.models.inventory import WeightsStatus, captioner_weights
from curation_assets.models.registry import ModelSettings
from curation_assets.orchestration.recipe import CAPTIONER, Recipe, effective_config, scorer_enabled
from curation_assets.scorers.caption_text import clean_caption
from curation_assets.scores import all_scores


def model_scorers() -> tuple[str, ...]:
    """Every score that declares the weights it needs, then the captioner."""
    return (*(decl.name for decl in all_scores() if decl.weights is not None), CAPTIONER)


def real_in_every_profile() -> tuple[str, ...]:
    """Scores whose real weights load under the tiny profile too (OCR's ship with a pip package)."""
    return tuple(decl.name for decl in all_scores() if decl.weights_in_every_profile)


class MissingWeights(RuntimeError):
    """Raised with the one-message summary (preflight_message)."""


def needs_captioner(recipe: Recipe, manifest_texts: list[str | None]) -> bool:
    """Whether the captions step will load its captioner for these clips."""
    if not scorer_enabled(recipe, "captions") or not manifest_texts:
        return False
    config = effective_config("captions", recipe)
    if config.recaption_all:
        return True
    return config.generate_missing and any(not clean_caption(text) for text in manifest_texts)


def scorers_needing_weights(recipe: Recipe, captioner: bool, selected: set[str] | None = None) -> list[str]:
    """The enabled model scorers of this run (`selected`: the run's assets, None = all)."""
    names = [name for name in model_scorers() if scorer_enabled(recipe, name) and (name != CAPTIONER or captioner)]
    return [name for name in names if selected is None or name in selected]


def missing_weights(recipe: Recipe, settings: ModelSettings, scorers: list[str]) -> list[WeightsStatus]:
    if settings.profile == "tiny":  # random weights built from configs: nothing to find
        scorers = [name for name in scorers if name in real_in_every_profile()]
    rows = []
    for name in scorers:
        if name == CAPTIONER:
            rows.append(captioner_weights(settings, effective_config(CAPTIONER, recipe).model_id))
            continue
        decl = next(d for d in all_scores() if d.name == name)
        config = effective_config(name, recipe) if decl.config is not None else None
        rows.extend(decl.weights(settings, config))
    return [row for row in rows if row.found is None]


def preflight_message(missing: list[WeightsStatus], profile: str) -> str:
    width = max(len(row.model) for row in missing)
    switch = ", ".join(f"{name}: false" for name in dict.fromkeys(row.used_by.split()[0] for row in missing))
    lines = [f"missing model weights: {len(missing)} that this recipe needs (model profile {profile}) are not on "
             "this machine:"]
    lines += [f"  {row.model:<{width}}  for {row.used_by}" for row in missing]
    lines += [
        "Either bring them (`curation-assets models` shows where each one is looked for; docs/models.md),",
        "or try the pipeline on random-weight stand-ins: --model-profile tiny (CURATION_MODEL_PROFILE=tiny; "
        "scores are noise),",
        f"or switch those scorers off in the recipe: `scorers: {{{switch}}}` (as recipes/no_weights.yaml does).",
    ]
    return "\n".join(lines)


def check_weights(recipe: Recipe, settings: ModelSettings, manifest_texts: list[str | None],
                  selected: set[str] | None = None) -> None:
    """Raise MissingWeights naming every missing weight this run needs; return when all are there."""
    scorers = scorers_needing_weights(recipe, needs_captioner(recipe, manifest_texts), selected)
    missing = missing_weights(recipe, settings, scorers)
    if missing:
        raise MissingWeights(preflight_message(missing, settings.profile))
