"""Training-set selection and report logic, on hand-made score tables."""

import duckdb
import numpy as np
import polars as pl
import pytest

from curation_assets.outputs.report import summarize, suggest_thresholds
from curation_assets.outputs.selection import (
    DEFAULT_PIXEL_BUDGET, ineligible_reason_sql, resolve_budget, resolve_shape, score_directions, selection_steps,
)
from curation_assets.store.score_store import run_steps


def candidates(n=6, width=320, height=256):
    rng = np.random.default_rng(0)
    return pl.DataFrame({
        "video_id": [f"v{i}" for i in range(n)],
        "width": [width] * n, "height": [height] * n, "frame_count": [100] * n,
        "has_caption": [True] * n,
        "aesthetics_score": [0.1 * i for i in range(n)],  # v5 best
        "clip_similarity": rng.uniform(0.2, 0.3, n).tolist(),
        "motion_score": [2.0] * n,
        "ocr_area_ratio": [0.0] * n,
    })


def select(frame: pl.DataFrame, shape, epochs: int, budget: float, weights: dict) -> pl.DataFrame:
    """The product's selection steps, run over `frame` as the candidates table."""
    con = duckdb.connect()
    con.register("frame", frame.to_arrow())
    con.execute("create temp table candidates as select * from frame")
    return run_steps(con, selection_steps("candidates", frame.columns, shape, epochs, budget, weights))[-1]


def ineligible(frame: pl.DataFrame, shape) -> list:
    con = duckdb.connect()
    con.register("candidates", frame.to_arrow())
    return [r for (r,) in con.execute(f"select {ineligible_reason_sql(shape)} from candidates").fetchall()]


def reference_composite(frame: pl.DataFrame, weights: dict) -> np.ndarray:
    """The definition, in numpy: weighted mean of per-score average ranks / (n - 1), a score's
    direction applied, a missing value (null, NaN) the worst."""
    directions = score_directions()
    n, total = frame.height, np.zeros(frame.height)
    for column, weight in weights.items():
        values = directions[column] * frame[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
        values[np.isnan(values)] = -np.inf
        ranks = np.array([(values < v).sum() + ((values == v).sum() - 1) / 2 for v in values])
        total += weight * (ranks / (n - 1) if n > 1 else np.ones(n))
    return total / (sum(abs(w) for w in weights.values()) or 1.0)


def test_presets_and_budget():
    shape = resolve_shape("16x512x512")
    assert shape.pixels == 16 * 512 * 512
    assert resolve_budget(shape, 1, None, None) == DEFAULT_PIXEL_BUDGET == 125_000 * shape.pixels
    assert resolve_budget(shape, 2, None, 10) == 10 * 2 * shape.pixels
    assert resolve_shape("custom", 8, 128, 96).pixels == 8 * 128 * 96
    with pytest.raises(ValueError):
        resolve_shape("custom", 8, None, 96)
    with pytest.raises(ValueError):
        resolve_budget(shape, 1, 1e9, 3)


def test_budget_that_fits_exactly_k_selects_the_best_k():
    shape = resolve_shape("16x256x256")
    frame = candidates()
    k = 3
    chosen = select(frame, shape, epochs=2, budget=k * 2 * shape.pixels, weights={"aesthetics_score": 1.0})
    assert chosen["video_id"].to_list() == ["v5", "v4", "v3"]
    assert chosen["rank"].to_list() == [1, 2, 3]
    # one pixel short of K clips: K-1
    short = select(frame, shape, epochs=2, budget=k * 2 * shape.pixels - 1, weights={"aesthetics_score": 1.0})
    assert short.height == k - 1


def test_ties_are_broken_by_video_id_deterministically():
    shape = resolve_shape("16x256x256")
    frame = candidates().with_columns(pl.lit(0.5).alias("aesthetics_score"))
    a = select(frame, shape, 1, 2 * shape.pixels, {"aesthetics_score": 1.0})
    b = select(frame.reverse(), shape, 1, 2 * shape.pixels, {"aesthetics_score": 1.0})
    assert a["video_id"].to_list() == b["video_id"].to_list() == ["v0", "v1"]


def test_lower_is_better_scores_are_inverted_and_missing_scores_rank_last():
    shape = resolve_shape("16x256x256")
    frame = candidates(3).with_columns(video_id=pl.Series(["a", "b", "c"]),
                                       ocr_area_ratio=pl.Series([0.3, 0.0, None]))
    chosen = select(frame, shape, 1, 3 * shape.pixels, {"ocr_area_ratio": 1.0})
    assert dict(zip(chosen["video_id"], chosen["composite"])) == {"a": 0.5, "b": 1.0, "c": 0.0}
    with pytest.raises(ValueError):
        select(frame, shape, 1, shape.pixels, {"bogus": 1.0})


def test_composite_is_the_reference_definition_to_the_last_bit():
    """Ties, NaN, nulls, negative directions, uneven weights: the ranks give the reference's
    doubles exactly (so a choice near the cut does not depend on what computed it)."""
    rng = np.random.default_rng(7)
    n = 500
    ocr = rng.random(n)
    ocr[rng.random(n) < 0.1] = np.nan
    frame = candidates(n).with_columns(
        video_id=pl.Series([f"v{i:04d}" for i in rng.permutation(n)]),
        aesthetics_score=pl.Series(np.round(rng.random(n), 1)),  # many ties
        ocr_area_ratio=pl.Series(ocr),
        clip_similarity=pl.Series([None if i % 7 == 0 else float(v) for i, v in enumerate(rng.random(n))]),
    )
    weights = {"aesthetics_score": 1.0, "ocr_area_ratio": 0.5, "clip_similarity": 0.3}
    shape = resolve_shape("16x256x256")
    chosen = select(frame, shape, 1, n * shape.pixels, weights)
    expected = frame.with_columns(pl.Series("composite", reference_composite(frame, weights)))
    expected = expected.sort(["composite", "video_id"], descending=[True, False])
    assert chosen["video_id"].to_list() == expected["video_id"].to_list()
    assert chosen["composite"].to_list() == expected["composite"].to_list()
    top = select(frame, shape, 1, 40 * shape.pixels, weights)
    assert top["video_id"].to_list() == expected["video_id"].head(40).to_list()


def test_preset_changes_eligibility():
    frame = candidates(width=640, height=360)
    assert ineligible(frame, resolve_shape("16x256x256")) == [None] * 6
    assert set(ineligible(frame, resolve_shape("16x512x512"))) == {"height<512"}
    assert select(frame, resolve_shape("16x512x512"), 1, 1e15, {"aesthetics_score": 1.0}).height == 0
    short = frame.with_columns(pl.lit(10).alias("frame_count"))
    assert set(ineligible(short, resolve_shape("16x256x256"))) == {"frames<16"}
    uncaptioned = frame.with_columns(pl.lit(False).alias("has_caption"))
    assert set(ineligible(uncaptioned, resolve_shape("16x256x256"))) == {"no caption"}


def test_suggested_thresholds_stay_in_valid_ranges():
    summaries = {
        "motion_score": summarize("motion_score", np.array([0.1, 0.2, 5.0, 9.0])),
        "aesthetics_score": summarize("aesthetics_score", np.array([0.4, 0.5, 0.6])),
        "ocr_area_ratio": summarize("ocr_area_ratio", np.array([0.0, 0.0, 0.5])),
    }
    sigma = suggest_thresholds(summaries, "sigma")
    assert sigma["motion_min"] == 0.0 and sigma["motion_max"] > 9.0
    assert 0.0 <= sigma["aesthetics_score_min"] < 0.4
    assert sigma["ocr_area_ratio_max"] <= 1.0
    wide = {"ocr_area_ratio": summarize("ocr_area_ratio", np.array([0.0, 0.0, 0.0, 0.9]))}
    assert suggest_thresholds(wide, "sigma")["ocr_area_ratio_max"] == 1.0  # clamped to the valid range
    middle = suggest_thresholds(summaries, "percentile", keep_middle=0.5)
    assert 0.1 < middle["motion_min"] < middle["motion_max"] < 9.0


# --------------------------------------------------------------------------- report charts and text


def _chart(values, thresholds, noise=0):
    import matplotlib.pyplot as plt

    from curation_assets.outputs.report import histogram_figure

    fig = histogram_figure("score", np.asarray(values, dtype=float), thresholds, noise=noise)
    fig.canvas.draw()
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    plot_area = ax.get_window_extent(renderer)
    bars = [p.get_window_extent(renderer) for p in ax.patches if p.get_height() > 0]
    labels = [t for t in ax.texts if t.get_text().strip()]
    plt.close(fig)
    return ax, plot_area, bars, labels, renderer


def _assert_labels_inside_and_clear_of_bars(plot_area, bars, labels, renderer):
    for label in labels:
        box = label.get_window_extent(renderer)
        assert plot_area.x0 <= box.x0 and box.x1 <= plot_area.x1, f"{label.get_text()!r} leaves the plot area"
        assert plot_area.y0 <= box.y0 and box.y1 <= plot_area.y1, f"{label.get_text()!r} leaves the plot area"
        assert not any(box.overlaps(bar) for bar in bars), f"{label.get_text()!r} overlaps a bar"


@pytest.mark.parametrize("values", [
    np.full(9, 0.5),                                   # one value
    0.4999 + np.linspace(0, 0.0002, 13),               # all within 0.0002 (tiny aesthetics)
    np.zeros(9),                                       # no text anywhere: OCR all zero
])
def test_narrow_distributions_get_zoomed_axes_with_visible_bars(values):
    ax, plot_area, bars, labels, renderer = _chart(values, {"aesthetics_score_min": 0.4, "x_max": None})
    assert bars, "no bar drawn"
    widest = max(b.width for b in bars)
    assert widest >= 5, f"bars are {widest:.2f} px wide: invisible"
    assert sum(b.height for b in bars) > 0
    # the far threshold is named at the edge, not drawn by stretching the axis to 0.4
    lo, hi = ax.get_xlim()
    assert hi - lo < 0.01
    assert any("aesthetics_score_min=0.4 (off the axis)" in t.get_text() for t in labels)
    assert "axis zoomed" in ax.get_xlabel()
    _assert_labels_inside_and_clear_of_bars(plot_area, bars, labels, renderer)


def test_no_values_says_so():
    ax, _, bars, labels, _ = _chart([], {"motion_min": 0.25})
    assert bars == []
    assert [t.get_text() for t in labels][:1] == ["no values"]
    assert "(n=0)" in ax.get_title()


def test_threshold_labels_stay_inside_and_off_the_bars():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(3, 1, 300), [14.0]])
    # one bound at each edge of the data and two close together: none may leave the plot or sit on a bar
    ax, plot_area, bars, labels, renderer = _chart(values, {"motion_min": 0.25, "motion_max": 12, "near_max": 12.3})
    assert len(labels) == 3
    _assert_labels_inside_and_clear_of_bars(plot_area, bars, labels, renderer)
    lo, hi = ax.get_xlim()
    assert lo <= 0.25 and hi >= 14.0


def test_noise_charts_say_so_in_the_title():
    ax, *_ = _chart(np.linspace(0.49, 0.51, 20), {}, noise=20)
    assert "tiny random-weight model: NOISE" in ax.get_title()
    ax, *_ = _chart(np.linspace(0, 0.5, 20), {}, noise=5)
    assert "5 of 20 from a tiny random-weight model: NOISE" in ax.get_title()
    ax, *_ = _chart(np.linspace(0, 0.5, 20), {})
    assert "NOISE" not in ax.get_title()


def test_no_suggestion_for_noise_scores_and_the_recipe_says_why():
    from curation_assets.orchestration.recipe import load_recipe
    from curation_assets.outputs.report import suggested_recipe_text, tiny_banner

    rng = np.random.default_rng(0)
    summaries = {c: summarize(c, rng.uniform(0.2, 0.8, 100))
                 for c in ("motion_score", "clip_similarity", "aesthetics_score", "ocr_area_ratio")}
    noise = {"clip_similarity": 100, "aesthetics_score": 100, "motion_score": 0}
    suggestion = suggest_thresholds(summaries, skip={c for c, n in noise.items() if n})
    assert set(suggestion) == {"motion_min", "motion_max", "ocr_area_ratio_max"}
    banner = tiny_banner(noise, 100, 120)
    assert banner.startswith("Built on tiny-profile scores: 100 of 120 videos")
    assert "aesthetics_score, clip_similarity are noise" in banner
    text = suggested_recipe_text(suggestion, 400, "sigma", banner, ["clip_similarity", "aesthetics_score"])
    assert "# WARNING: Built on tiny-profile scores" in text
    assert "# No thresholds suggested for (tiny-model noise): clip_similarity, aesthetics_score" in text
    assert tiny_banner({"motion_score": 0}, 0, 10) == ""
    # a score with one value everywhere (no text in any clip) gives no threshold, not "max 0"
    assert suggest_thresholds({"ocr_area_ratio": summarize("ocr_area_ratio", np.zeros(20))}) == {}


def test_report_document_has_every_chart_and_the_full_percentile_table():
    from curation_assets.outputs.report import PERCENTILES, percentile_table, report_markdown

    rng = np.random.default_rng(0)
    summaries = [summarize("motion_score", rng.uniform(0, 5, 50)), summarize("aesthetics_score", rng.uniform(0, 1, 50))]
    table = percentile_table(summaries, {"aesthetics_score": 50})
    head = table.splitlines()[0]
    assert all(f"p{p}" in head for p in PERCENTILES) and head.endswith("| from tiny models |")
    assert table.splitlines()[3].endswith("| **all: noise** |") and table.splitlines()[2].endswith("| no |")
    doc = report_markdown(banner="Built on tiny-profile scores: x", funnel_rows=[("in", 3), ("kept", 1)],
                          percentiles=table, suggested_yaml="curated_videos: {}\n",
                          charts=[("motion_score", ""), ("aesthetics_score", " (tiny models: noise)")],
                          image=lambda name: f"![{name}](IMG:{name})")
    assert doc.startswith("# Score report\n\n> **WARNING: Built on tiny-profile scores: x**")
    assert [line for line in doc.splitlines() if "](IMG:" in line] == [
        "![funnel](IMG:funnel)", "![motion_score](IMG:motion_score)", "![aesthetics_score](IMG:aesthetics_score)"]
    assert "### aesthetics_score (tiny models: noise)" in doc and table in doc


def test_the_choice_marks_exactly_the_clips_with_a_tiny_score_or_caption(tmp_path):
    """`scores_profile` per chosen clip: 'tiny' when its own verdict, one of its noisy scores or
    its generated caption came from a tiny random-weight model; the others 'real' (a store mixing
    both: the tiny rows' keys are joined, not every row)."""
    from curation_assets.orchestration.assets.curated_videos import schema
    from curation_assets.orchestration.assets.training_set import _choose
    from curation_assets.store import ScoreStore

    store = ScoreStore(tmp_path / "curation.duckdb")
    ids = ["a", "b", "c", "d"]
    curated = [{"path": f"/v/{v}.mp4", "video_id": v, "status": "kept", "reasons": [], "caption_source": "original",
                "caption": f"clip {v}", "model_profile": "tiny" if v == "d" else "real", "scorers_off": [],
                "thresholds": "{}", "error": None, "width": 640, "height": 360, "aesthetics_score": 0.1 * i,
                "motion_score": 1.0} for i, v in enumerate(ids)]
    store.replace_shard("curated_videos", "shard-00000", pl.DataFrame(curated, schema=schema(), orient="row"))
    store.replace_shard("raw_videos", "shard-00000", pl.DataFrame(
        {"video_id": ids, "path": [f"/v/{v}.mp4" for v in ids], "frame_count": [100] * 4, "fps": [25.0] * 4}))
    store.replace_shard("aesthetics", "shard-00000", pl.DataFrame(
        {"video_id": ids, "aesthetics_score": [0.0, 0.1, 0.2, 0.3], "profile": ["real", "tiny", "real", "real"]}))
    store.replace_shard("captions", "shard-00000", pl.DataFrame(
        {"video_id": ids, "caption": [f"clip {v}" for v in ids], "profile": [None, None, "tiny", None]}))
    shape = resolve_shape("16x256x256")
    chosen, kept, ineligible = _choose(store, shape, 1, 10 * shape.pixels, {"aesthetics_score": 1.0})
    assert kept == 4 and ineligible == {}
    assert dict(zip(chosen["video_id"], chosen["scores_profile"])) == {"a": "real", "b": "tiny", "c": "tiny", "d": "tiny"}
    assert chosen["video_id"].to_list() == ["d", "c", "b", "a"]  # best aesthetics first
    assert chosen["file_path"].to_list() == [f"/v/{v}.mp4" for v in "dcba"]


def test_the_choice_finds_the_short_clips_in_the_registry_and_the_accelerated_files(tmp_path):
    """Too few frames for the shape makes a kept clip ineligible: its registry row's count, or
    its accelerated file's where there is one. Only the short registry rows are looked up, so a
    long clip, a clip whose count is unknown and a clip whose short namesake sits in another
    shard stay eligible."""
    from curation_assets.orchestration.assets.curated_videos import schema
    from curation_assets.orchestration.assets.training_set import _choose
    from curation_assets.store import ScoreStore

    store = ScoreStore(tmp_path / "curation.duckdb")
    frames = {"long": 100, "short": 10, "unknown": None, "sped_up_short": 40, "sped_up_long": 100, "other_shard": 100}
    ids = list(frames)

    def kept(v, i):
        return {"path": f"/v/{v}.mp4", "video_id": v, "status": "kept", "reasons": [], "caption_source": "original",
                "caption": f"clip {v}", "model_profile": "real", "scorers_off": [], "thresholds": "{}", "error": None,
                "width": 640, "height": 360, "aesthetics_score": 0.1 * i, "motion_score": 1.0}

    store.replace_shard("curated_videos", "shard-00000",
                        pl.DataFrame([kept(v, i) for i, v in enumerate(ids)], schema=schema(), orient="row"))
    store.replace_shard("raw_videos", "shard-00000", pl.DataFrame(
        {"video_id": ids, "path": [f"/v/{v}.mp4" for v in ids], "frame_count": list(frames.values()),
         "fps": [25.0] * len(ids)}, schema_overrides={"frame_count": pl.Int64}))
    # the same file registered again in another shard, short there: not the kept clip's row;
    # and a copy of a kept clip kept there too (two registrations raced their duplicate lookup):
    # one candidate, the first by shard
    copy = {**kept("long", 9), "path": "/v/long_copy.mp4"}
    store.replace_shard("curated_videos", "shard-00001", pl.DataFrame([copy], schema=schema(), orient="row"))
    store.replace_shard("raw_videos", "shard-00001", pl.DataFrame(
        {"video_id": ["x", "long"], "path": ["/v/other_shard.mp4", "/v/long_copy.mp4"], "frame_count": [5, 100],
         "fps": [25.0] * 2}))
    store.replace_shard("accelerated_videos", "shard-00000", pl.DataFrame(
        {"video_id": ["sped_up_short", "sped_up_long"], "status": ["accelerated"] * 2,
         "output_path": ["acc/sped_up_short.mp4", "acc/sped_up_long.mp4"], "new_frames": [12, 50],
         "motion_after": [2.0, 2.0]}))
    shape = resolve_shape("16x256x256")
    chosen, kept_clips, ineligible = _choose(store, shape, 1, 10 * shape.pixels, {"aesthetics_score": 1.0})
    assert kept_clips == 6 and ineligible == {"frames<16": 2}
    assert sorted(chosen["video_id"]) == ["long", "other_shard", "sped_up_long", "unknown"]
    assert dict(zip(chosen["video_id"], chosen["accelerated"]))["sped_up_long"] is True
    assert dict(zip(chosen["video_id"], chosen["file_path"]))["long"] == "/v/long.mp4"


def test_the_training_set_files_are_the_text_json_dumps_writes(tmp_path):
    """metadata.json and data_juicer.jsonl are made by polars a chunk at a time; their text is
    exactly what json.dumps (indent=2 for the array, ensure_ascii=False) writes, for captions
    and paths with quotes, backslashes, control characters, non-ASCII and line separators."""
    import json

    import curation_assets.orchestration.assets.training_set as training_set

    captions = ["plain", 'a "quote" and a \\ backslash', "new\nline\ttab\r\b\f", "\x00\x01\x1f\x7f",
                "ünïcödé 中文 😀", "\u2028\u2029", "</script> / slash", ""]
    chosen = pl.DataFrame({"file_path": [f'/v/"{i}" ü.mp4' for i in range(len(captions))], "caption": captions,
                           "caption_source": ["original", None] * (len(captions) // 2),
                           "scores_profile": ["real", "tiny"] * (len(captions) // 2)})
    for chunk in (3, 50_000):  # entries across chunks, and one chunk
        training_set._CHUNK = chunk
        metadata = "".join(training_set._json_array(training_set._text_chunks(chosen, training_set._metadata_entry)))
        jsonl = "".join(training_set._text_chunks(chosen, training_set._data_juicer_line))
        assert metadata == json.dumps([{"file_path": p, "text": c, "type": "video", "caption_source": s,
                                        "scores_profile": r} for p, c, s, r in chosen.iter_rows()],
                                      indent=2, ensure_ascii=False)
        assert jsonl == "".join(json.dumps({"videos": [p], "text": f"<__dj__video> {c} <|__dj__eoc|>",
                                            "scores_profile": r}, ensure_ascii=False) + "\n"
                                for p, c, _, r in chosen.iter_rows())
    empty = "".join(training_set._json_array(training_set._text_chunks(chosen.head(0), training_set._metadata_entry)))
    assert empty == json.dumps([], indent=2)


def test_the_report_names_the_scores_of_captions_from_a_tiny_captioner(tmp_path):
    """A score of the caption (character repetition) has no profile of its own: its values from
    captions a tiny random-weight captioner wrote are counted as noise, found by a join with the
    tiny captions (none in a real run), the others not."""
    from curation_assets.orchestration.assets.score_report import _score_values
    from curation_assets.store import ScoreStore

    store = ScoreStore(tmp_path / "curation.duckdb")
    ids = ["a", "b", "c", "d"]
    store.replace_shard("caption_repetition", "shard-00000", pl.DataFrame(
        {"video_id": ids, "char_rep_ratio": [0.1, 0.2, None, 0.4], "error": [None, None, None, "boom"]}))
    store.replace_shard("captions", "shard-00000", pl.DataFrame(
        {"video_id": ids, "caption": ["x"] * 4, "profile": ["tiny", None, "tiny", "tiny"]}))
    store.replace_shard("captions", "shard-00001", pl.DataFrame({"video_id": ["b"], "caption": ["y"], "profile": ["tiny"]}))
    tables = store.tables()
    present = store.columns(["caption_repetition"])["caption_repetition"]
    got = _score_values(store, tables, "caption_repetition", {"char_rep_ratio": "char_rep_ratio"}, present)
    values, tiny = got["char_rep_ratio"]
    assert np.isnan(values[2]) and values[:2].tolist() == [0.1, 0.2] and len(values) == 3  # the failed row left out
    assert tiny == ["a"]  # c has no value, d failed, b's tiny caption is another shard's clip
