"""The declarations are the one list of scores: the docs' table and every derived list follow them."""

from pathlib import Path

from curation_assets.scores import all_scores
from curation_assets.scores.docs_table import END, FILES, START, scores_table

REPO = Path(__file__).resolve().parents[1]


def test_the_docs_score_table_is_the_declarations():
    table = scores_table()
    for name in FILES:
        text = (REPO / name).read_text()
        committed = text[text.index(START) + len(START):text.index(END)].strip()
        assert committed == table, (f"{name}: the table of scores differs from the declarations; run "
                                    "`.venv/bin/python -m curation_assets.scores.docs_table --write`")


def test_derived_lists_follow_the_declarations():
    from curation_assets.curation.rules import bounds, required_scores
    from curation_assets.orchestration.configs import asset_configs, rule_thresholds_class
    from curation_assets.orchestration.recipe import code_revisions, switchable_scorers
    from curation_assets.outputs.report import reported_scores
    from curation_assets.outputs.selection import score_directions

    declared = list(all_scores())
    keys = [b.key for d in declared for b in d.bounds]
    assert list(rule_thresholds_class().model_fields) == [*keys, "require_caption"]
    assert [key for _, key, _ in bounds()] == keys
    every, captioned = required_scores()
    assert set(every) | set(captioned) == {d.name for d in declared}
    assert set(captioned) == {d.name for d in declared if d.needs_caption}
    assert {d.name for d in declared} <= set(code_revisions())
    assert {d.name for d in declared if d.config is not None} <= set(asset_configs())
    assert set(switchable_scorers()) == {"captions", *(d.name for d in declared if d.switchable)}
    curated = {c for d in declared for c in d.value_columns}
    assert set(reported_scores()) == curated == set(score_directions())
