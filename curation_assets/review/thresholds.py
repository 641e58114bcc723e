"""The thresholds the gallery lets a curator move, and the recipe that applies them.

The page re-judges clips in the browser, so it must apply a moved threshold exactly where
`curation.rules.judge` would, under exactly the thresholds `curated_videos` would pass it:
`_CurationSettings.thresholds_for` (per-source overrides, tiny-profile skipping) and
`without_scorers` (switched-off scorers). Rather than restating those rules in JavaScript,
`pinned_keys` asks them: it runs them twice, once with the recipe's shared thresholds and
once with every shared value changed, and a key that follows the shared value both times is
one the page's control moves; any other key is pinned to what those rules made of it (an
override, or null when skipped). A rule added to thresholds_for later is picked up the same way.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from curation_assets.curation.rules import scorer_bounds, without_scorers
from curation_assets.scores import all_scores

CURATED = "curated_videos"
REQUIRE_CAPTION = "require_caption"


@dataclass(frozen=True)
class Control:
    """One threshold the page can move: a declared bound, or require_caption."""

    key: str
    column: str | None  # the curated_videos column it bounds (None: require_caption)
    op: str | None  # the comparison that FAILS the rule: "<" or ">"
    score: str | None
    kind: str  # "float", "int" or "bool"
    default: Any
    description: str
    noise_under_tiny: bool = False

    def as_json(self, value: Any) -> dict:
        return {"key": self.key, "column": self.column, "op": self.op, "score": self.score, "kind": self.kind,
                "default": self.default, "value": value, "description": self.description,
                "noise_under_tiny": self.noise_under_tiny}


def controls() -> list[Control]:
    """Every declared bound in `rules.bounds()` order (the order reasons are named in), then
    require_caption: a plugin's score brings its controls with it."""
    out = []
    for decl in all_scores():
        for bound in decl.bounds:
            out.append(Control(bound.key, decl.bound_column(bound), bound.fails, decl.name,
                               "int" if bound.kind is int else "float", bound.default,
                               bound.description or f"{'Lowest' if bound.op == 'min' else 'Highest'} "
                               f"{decl.bound_column(bound)} kept (null: not checked).", decl.noise_under_tiny))
    out.append(Control(REQUIRE_CAPTION, None, None, None, "bool", True, "Reject clips with no usable caption."))
    return out


def curation_config(recipe: dict, shared: dict | None = None):
    """The recipe's curated_videos settings, with `shared` as its thresholds when given."""
    from curation_assets.orchestration.configs import asset_configs

    section = dict(recipe.get(CURATED) or {})
    if shared is not None:
        section["thresholds"] = shared
    return asset_configs()[CURATED](**section)


def shared_thresholds(recipe: dict) -> dict:
    """The recipe's shared thresholds (defaults filled in)."""
    return curation_config(recipe).thresholds.model_dump()


def effective_thresholds(recipe: dict, shared: dict, source: str | None, profile: str | None) -> dict:
    """What curated_videos passes `judge` for a clip of this caption source and model profile."""
    from curation_assets.orchestration.recipe import scorers_off

    return without_scorers(curation_config(recipe, shared).thresholds_for(source, profile), scorers_off(recipe))


def _perturbed(shared: dict) -> dict:
    """Every shared value changed (and none null), so a key that follows it shows."""
    kinds = {c.key: c.kind for c in controls()}
    out = {}
    for key, value in shared.items():
        kind = kinds.get(key, "float")
        if kind == "bool":
            out[key] = not value
        elif kind == "int":
            out[key] = (value or 0) + 7
        else:
            out[key] = (value or 0.0) * 1.5 + 0.37
    return out


def pinned_keys(recipe: dict, source: str | None, profile: str | None) -> dict[str, Any]:
    """key -> the value a clip of this (caption source, model profile) is judged with whatever
    the shared thresholds are; keys not listed follow the shared value (see the module doc)."""
    a = shared_thresholds(recipe)
    b = _perturbed(a)
    eff_a = effective_thresholds(recipe, a, source, profile)
    eff_b = effective_thresholds(recipe, b, source, profile)
    return {key: eff_a.get(key) for key in a if not (eff_a.get(key) == a[key] and eff_b.get(key) == b[key])}


def off_note(recipe: dict) -> dict[str, str]:
    """key -> why it is not applied to any clip (its scorer switched off by the recipe)."""
    from curation_assets.orchestration.recipe import scorers_off

    return {key: f"scorer {name} switched off by the recipe" for name in scorers_off(recipe)
            for key in scorer_bounds(name)}


class ThresholdError(ValueError):
    """Thresholds a recipe cannot hold; the message is one line."""


def check_thresholds(values: Any) -> dict:
    """The page's thresholds, refused in one line when a key is unknown or a value the wrong type."""
    if not isinstance(values, dict):
        raise ThresholdError("thresholds must be a mapping of threshold key -> value")
    known = {c.key: c for c in controls()}
    out = {}
    for key, value in values.items():
        control = known.get(key)
        if control is None:
            raise ThresholdError(f"unknown threshold {key!r} (known: {', '.join(known)})")
        if control.kind == "bool":
            if not isinstance(value, bool):
                raise ThresholdError(f"{key} must be true or false, not {value!r}")
        elif value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise ThresholdError(f"{key} must be a number or null, not {value!r}")
            if control.kind == "int":
                if float(value) != int(value):
                    raise ThresholdError(f"{key} is a whole number of pixels, not {value!r}")
                value = int(value)
            else:
                value = float(value)
        out[key] = value
    return out


def recipe_with_thresholds(recipe: dict, thresholds: dict) -> tuple[dict, list[str]]:
    """The recipe with these shared thresholds (every other setting kept: per-source overrides,
    scorer switches, parameters, so the scores stay fresh and only curated_videos goes stale),
    and 'key: old -> new' for each changed one."""
    from curation_assets.orchestration.recipe import RecipeError, normalize_recipe

    new = check_thresholds(thresholds)
    current = shared_thresholds(recipe)
    changes = [f"{key}: {_fmt(current.get(key))} -> {_fmt(value)}" for key, value in new.items()
               if current.get(key) != value]
    out = copy.deepcopy(recipe)
    section = dict(out.get(CURATED) or {})
    merged = dict(section.get("thresholds") or {})
    merged.update({key: value for key, value in new.items() if current.get(key) != value or key in merged})
    section["thresholds"] = merged
    out[CURATED] = section
    try:
        normalize_recipe(copy.deepcopy(out), source="the gallery's thresholds")
    except RecipeError as exc:
        raise ThresholdError(str(exc)) from None
    return out, changes


def recipe_yaml(recipe: dict, header: str = "") -> str:
    body = yaml.safe_dump(recipe, sort_keys=False, default_flow_style=False) if recipe else "{}\n"
    return header + body


def _fmt(value: Any) -> str:
    import json

    return json.dumps(value)
