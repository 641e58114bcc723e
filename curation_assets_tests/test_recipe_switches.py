"""Recipes: scorer switches, the stored recipe of a data dir, its diff, and the weights pre-flight."""

import pytest

from curation_assets.curation.rules import KEPT, REJECTED, judge, required_scores, without_scorers
from curation_assets.models.registry import ModelSettings
from curation_assets.orchestration.preflight import (
    MissingWeights, check_weights, missing_weights, needs_captioner, scorers_needing_weights,
)
from curation_assets.orchestration.recipe import (
    RecipeError, code_version, normalize_recipe, recipe_hash, run_config, scorer_enabled, scorers_off,
)
from curation_assets.orchestration.stored_recipe import (
    assets_made_stale, read_stored, recipe_changes, resolve_profile, store_recipe,
)


def test_scorers_section_validates_in_one_line():
    recipe = normalize_recipe({"scorers": {"aesthetics": False, "captions": False}})
    assert not scorer_enabled(recipe, "aesthetics") and scorer_enabled(recipe, "ocr_area")
    assert scorers_off(recipe) == ["captions", "aesthetics"]
    assert run_config(recipe) == {"ops": {}}  # not run config: it shapes the definitions
    for bad, expected in [
        ({"scorers": {"aesthetic": False}}, "unknown scorer 'aesthetic' (known: captions, clip_similarity, aesthetics, ocr_area)"),
        ({"scorers": {"motion": False}}, "scorers.motion cannot be switched off"),
        ({"scorers": {"ocr_area": "no"}}, "scorers.ocr_area must be true or false"),
        ({"scorers": ["aesthetics"]}, "scorers must be a mapping"),
    ]:
        with pytest.raises(RecipeError) as info:
            normalize_recipe(bad, source="r.yaml")
        assert expected in str(info.value) and "\n" not in str(info.value)
    # the full run-config form takes the section too
    full = normalize_recipe({"ops": {"motion": {"config": {"size": 96}}}, "scorers": {"clip_similarity": False}})
    assert scorers_off(full) == ["clip_similarity"]


def test_switching_off_changes_exactly_the_right_code_versions():
    on, off = {}, normalize_recipe({"scorers": {"aesthetics": False}})
    assert code_version("aesthetics", off, "real").endswith("-off")
    assert code_version("aesthetics", off, "real") == code_version("aesthetics", off, "tiny")  # no model ran
    assert assets_made_stale(on, off, "real", "real") == ["aesthetics", "curated_videos"]
    assert recipe_changes(on, off, "real", "real") == ["scorers.aesthetics: true -> false"]
    # a recipe spelling out a default means the same recipe
    assert recipe_hash(normalize_recipe({"motion": {"sampling_fps": 2.0}})) == recipe_hash({})
    threshold = normalize_recipe({"curated_videos": {"thresholds": {"motion_max": 12}}})
    assert recipe_changes({}, threshold, "real", "tiny") == [
        "curated_videos.thresholds.motion_max: null -> 12.0", "model profile: real -> tiny"]
    assert assets_made_stale({}, threshold, "real", "real") == ["curated_videos"]


def test_verdict_without_switched_off_scorers():
    video = {"caption": "a dog runs", "resolution_present": True, "motion_present": True, "ocr_area_present": True,
             "caption_repetition_present": True, "motion_score": 2.0, "width": 640, "height": 360,
             "char_rep_ratio": 0.0, "ocr_area_ratio": 0.0}
    thresholds = {"motion_min": 0.25, "aesthetics_score_min": 0.4, "clip_similarity_min": 0.2, "require_caption": True}
    # with every scorer on, the missing aesthetics/CLIP rows make the video failed, never kept
    assert judge(video, thresholds).status == "failed"
    off = ["clip_similarity", "aesthetics"]
    applied = without_scorers(thresholds, off)
    assert applied["aesthetics_score_min"] is None and applied["clip_similarity_min"] is None
    assert judge(video, applied, *required_scores(off)).status == KEPT
    slow = {**video, "motion_score": 0.1}
    assert judge(slow, applied, *required_scores(off)).reasons == ["motion_score<0.25"]
    assert judge({**video, "caption": None}, applied, *required_scores(off)).status == REJECTED  # caption_missing


def test_stored_recipe_round_trip_and_profile(tmp_path, monkeypatch):
    source = tmp_path / "mine.yaml"
    source.write_text("# my comment\nscorers: {aesthetics: false}\n")
    recipe = normalize_recipe({"scorers": {"aesthetics": False}})
    stored = store_recipe(tmp_path, str(source), recipe, "tiny")
    again = read_stored(tmp_path)
    assert again.recipe == recipe and again.hash == stored.hash == recipe_hash(recipe)
    assert again.model_profile == "tiny" and again.source == str(source)
    text = (tmp_path / "recipe.yaml").read_text()
    assert "# my comment" in text and f"recipe hash {stored.hash}" in text
    store_recipe(tmp_path, str(tmp_path / "recipe.yaml"), recipe, "tiny")  # re-storing keeps one header
    assert (tmp_path / "recipe.yaml").read_text().count("# stored by curation-assets run") == 1
    monkeypatch.delenv("CURATION_MODEL_PROFILE", raising=False)
    assert resolve_profile(tmp_path) == ("tiny", "stored with the data: recipe_state.json")
    assert resolve_profile(tmp_path, "real")[0] == "real"
    monkeypatch.setenv("CURATION_MODEL_PROFILE", "real")
    assert resolve_profile(tmp_path)[0] == "real"


def test_preflight_names_every_missing_weight(tmp_path, empty_hf_home):
    settings = ModelSettings(profile="real", model_dir=tmp_path)
    uncaptioned = [None, "<__dj__video> a cat <|__dj__eoc|>"]
    with pytest.raises(MissingWeights) as info:
        check_weights({}, settings, uncaptioned)
    message = str(info.value)
    for name in ("open_clip ViT-B-32/openai", "open_clip ViT-L-14/openai", "sac+logos+ava1-l14-linearMSE",
                 "kpyu/video-blip-opt-2.7b-ego4d", "curation-assets models", "--model-profile tiny",
                 "scorers: {clip_similarity: false, aesthetics: false, captions: false}"):
        assert name in message
    assert "missing model weights: 4 " in message
    # captioned clips need no captioner; switched-off scorers need nothing; OCR ships with a package
    assert not needs_captioner({}, ["a cat on a mat"])
    assert scorers_needing_weights({}, captioner=False) == ["clip_similarity", "aesthetics", "ocr_area"]
    no_weights = normalize_recipe({"scorers": {"captions": False, "clip_similarity": False, "aesthetics": False}})
    check_weights(no_weights, settings, uncaptioned)
    # the tiny profile builds its models: nothing to find but OCR's detector
    check_weights({}, ModelSettings(profile="tiny", model_dir=tmp_path), uncaptioned)
    # a run of only some assets checks only theirs
    assert [r.used_by for r in missing_weights({}, settings, scorers_needing_weights({}, True, {"aesthetics"}))] == [
        "aesthetics (backbone)", "aesthetics (head)"]


def test_known_clip_hub_sources_match_open_clip():
    """The table that spares the pre-flight an open_clip import must be open_clip's own."""
    import open_clip

    from curation_assets.models.clip import KNOWN_HF_HUB

    for (model, tag), hub in KNOWN_HF_HUB.items():
        assert open_clip.get_pretrained_cfg(model, tag)["hf_hub"] == hub
