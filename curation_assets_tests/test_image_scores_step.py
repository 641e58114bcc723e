"""The image_scores step's wiring: which assets it makes and where the recipe's sections go."""

from __future__ import annotations

import pytest
from dagster import AssetKey

from curation_assets.orchestration.assets.image_scores import build_image_scores, frame_scores
from curation_assets.orchestration.recipe import run_config


def test_recipe_sections_go_to_the_shared_step():
    recipe = {"clip_similarity": {"reduce_mode": "max"}, "ocr_area": {"max_side": 480}}
    assert run_config(recipe) == {"ops": {"image_scores": {"config": {"clip_similarity": {"reduce_mode": "max"},
                                                                        "ocr_area": {"max_side": 480}}}}}


def test_step_makes_the_selected_scorers_only():
    everything = build_image_scores({}, "tiny")
    assert set(everything.keys) == {AssetKey(name) for name in tuple(frame_scores())}
    assert everything.can_subset and everything.op.pool == "gpu"
    assert {k.to_user_string(): v for k, v in everything.code_versions_by_key.items()}["aesthetics"].endswith("-tiny")
    ocr_only = build_image_scores({"aesthetics": {"reduce_mode": "max"}}, "tiny", scorers=("ocr_area",))
    assert set(ocr_only.keys) == {AssetKey("ocr_area")}
    # a switched-off scorer's recipe section is still accepted by the step's config
    fields = ocr_only.op.config_schema.config_type.fields
    assert set(fields) == set(tuple(frame_scores()))
    with pytest.raises(ValueError, match="image scorers"):
        build_image_scores({}, "tiny", scorers=("motion",))
