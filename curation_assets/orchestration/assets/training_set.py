import json
import os
import time
from pathlib import Path

import polars as pl
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, MaterializeResult, MetadataValue, asset

from curation_assets.orchestration.assets.accelerated_videos import ACCELERATED_VIDEOS
from curation_assets.orchestration.assets.curated_videos import CURATED_VIDEOS
from curation_assets.orchestration.assets.captions import CAPTIONS
from curation_assets.orchestration.assets.shard_io import RAW_VIDEOS
from curation_assets.outputs.report import TINY_PROFILE
from curation_assets.outputs.selection import ineligible_reason_sql, resolve_budget, resolve_shape, selection_steps
from curation_assets.orchestration.recipe import Recipe, code_version, config_class
from curation_assets.orchestration.resources import CurationStore
from curation_assets.scores import all_scores

LORA_TRAINING_SET = "lora_training_set"


def score_columns() -> list[str]:
    """Every declared score value (curated_videos columns), carried into the training set's table."""
    return [curated for decl in all_scores() for curated in decl.value_columns]


def build_training_set(recipe: Recipe):
    TrainingSetConfig = config_class(LORA_TRAINING_SET, recipe)

    @asset(
        name=LORA_TRAINING_SET, deps=[CURATED_VIDEOS, ACCELERATED_VIDEOS], code_version=code_version(LORA_TRAINING_SET, recipe),
        group_name="outputs", kinds={"parquet", "duckdb", "json"},
        check_specs=[AssetCheckSpec("within_budget_and_files_exist", asset=LORA_TRAINING_SET)],
        description="The best kept clips (accelerated version where one exists) that fit the pixel budget, "
        "written as EasyAnimate metadata.json and a data-juicer jsonl under <data_dir>/training_sets/<preset>/.",
    )
    def lora_training_set(context: AssetExecutionContext, config: TrainingSetConfig, curation_store: CurationStore):
        started, store = time.perf_counter(), curation_store.store()
        shape = resolve_shape(config.preset, config.frames, config.height, config.width)
        budget = resolve_budget(shape, config.epochs, config.pixel_budget, config.max_clips)
        chosen, kept, ineligible = _choose(store, shape, config.epochs, budget, config.weights)
        preset_name = config.preset if config.preset != "custom" else f"{shape.frames}x{shape.height}x{shape.width}"
        out_dir = Path(curation_store.data_dir) / "training_sets" / preset_name
        summary = _write_outputs(out_dir, chosen, kept, kept - sum(ineligible.values()), ineligible, budget, shape, config)
        table = chosen.select(["rank", "video_id", "file_path", "caption", "caption_source", "composite",
                               "accelerated", "scores_profile", *score_columns()]).with_columns(pl.lit(preset_name).alias("preset"))
        # unpartitioned: one object per preset, replaced whole
        store.replace_partition(LORA_TRAINING_SET, preset_name, table,
                                code_version=context.assets_def.code_versions_by_key.get(context.asset_key) or "")
        missing = [p for p in chosen["file_path"].to_list() if not _file_exists(p)]
        check = AssetCheckResult(
            check_name="within_budget_and_files_exist",
            passed=summary["pixels_used"] <= budget and not missing,
            metadata={"pixels_used": summary["pixels_used"], "pixel_budget": budget, "missing_files": len(missing)},
        )
        lines = [f"| {k} | {v} |" for k, v in summary.items() if not isinstance(v, dict)]
        means = summary["score_means"]
        return MaterializeResult(
            metadata={
                "dagster/row_count": chosen.height, "clips": chosen.height, "pixels_used": summary["pixels_used"],
                "pixel_budget": budget, "budget_used": summary["budget_used"], "output_dir": str(out_dir),
                "summary": MetadataValue.md("| field | value |\n|---|---|\n" + "\n".join(lines)),
                "score_means": MetadataValue.json(means), "seconds": round(time.perf_counter() - started, 3),
                "scores_profile": summary["scores_profile"],
                **({"WARNING": MetadataValue.text(summary["warning"])} if "warning" in summary else {}),
            },
            check_results=[check],
        )

    return lora_training_set


_CANDIDATES = "candidates"


def _choose(store, shape, epochs: int, budget: float, weights: dict) -> tuple[pl.DataFrame, int, dict[str, int]]:
    """(the chosen clips best first, how many kept clips there are, ineligible reason -> clips).

    DuckDB does the whole choice: the kept clips with what ranking reads (no text) go into a
    temp table, ranks and the cut at the budget are computed over it, and only the chosen clips'
    captions come out. At ten million clips the kept rows with their captions, pulled out to be
    ranked in Python, were the head node's largest allocation (10 GB)."""
    tables = store.tables()
    if CURATED_VIDEOS not in tables:
        return pl.DataFrame(schema={"video_id": pl.Utf8}), 0, {}
    scores = score_columns()
    *ranking, chosen_rows = selection_steps(_CANDIDATES, scores, shape, epochs, budget, weights)
    making = _candidates_steps(store, tables, shape.frames)
    steps = [
        *making,
        # a clip kept in two shards (two registrations of one file raced their duplicate lookup)
        # is one candidate: the first by shard and path. A hash aggregate finds them (it spills;
        # a window over every candidate would hold them all in memory), over the ids' 64-bit
        # hashes: a collision only adds a row the window then tells apart (1.4 -> 0.55 s over
        # the ids themselves at ten million clips).
        f"delete from {_CANDIDATES} where rowid in (select _row from (select rowid as _row, row_number() over "
        f"(partition by video_id order by shard, path) as n from {_CANDIDATES} where hash(video_id) in "
        f"(select hash(video_id) from {_CANDIDATES} group by 1 having count(*) > 1)) where n > 1)",
        f"select {ineligible_reason_sql(shape)} as reason, count(*) as n from {_CANDIDATES} group by 1",
        *ranking,
        f"create temp table chosen as {chosen_rows}",
        # the text of the chosen clips only
        f"select ch.* exclude (has_caption), c.caption, c.caption_source from chosen ch join (select * from "
        f"{CURATED_VIDEOS} where status = 'kept') c on c.video_id = ch.video_id and c.shard = ch.shard "
        "and c.path = ch.path order by ch.rank",
    ]
    results = store.query_steps(steps)
    counts, chosen = dict(results[len(making) + 1].iter_rows()), results[-1]
    kept = sum(counts.values())
    counts.pop(None, None)
    # accelerated clips and clips cut by `shots` are keys relative to the store location
    # (registered sources are absolute): resolve them
    chosen = chosen.with_columns(pl.col("output_path").map_elements(store.location.resolve, return_dtype=pl.Utf8),
                                 pl.col("path").map_elements(store.location.resolve, return_dtype=pl.Utf8))
    chosen = chosen.with_columns(
        pl.when(pl.col("accelerated")).then(pl.col("output_path")).otherwise(pl.col("path")).alias("file_path"),
        pl.lit(float(epochs * shape.pixels)).alias("pixels"))
    return chosen, kept, counts


def _candidates_steps(store, tables: set, frames: int) -> list[str]:
    """Statements making the temp table of the kept clips with what choosing reads: size,
    frames (where fewer than `frames`), whether there is a caption, the scores (the accelerated
    file's frames and motion where there is one), `scores_profile`."""
    noisy = [t for t in [decl.name for decl in all_scores() if decl.noise_under_tiny] + [CAPTIONS] if t in tables]
    present = store.columns([CURATED_VIDEOS, *noisy])
    curated, noisy = present[CURATED_VIDEOS], [t for t in noisy if "profile" in present[t]]
    columns = ["c.video_id", "c.shard", "c.path", "c.has_caption"]
    # The frame count only decides whether a clip is too short for the shape, so only the
    # registry's short clips are looked up (a filtered scan of one column): joining every kept
    # clip with its registry row by path was half the choice at ten million clips. A clip not
    # among them has enough frames, or an unknown count (null), which never made it ineligible.
    steps = [f"create temp table _short as select path, shard, frame_count from {RAW_VIDEOS} "
             f"where frame_count < {int(frames)}"]
    joins = ["left join _short r on c.path = r.path and c.shard = r.shard"]
    if ACCELERATED_VIDEOS in tables:
        joins.append(f"left join (select video_id, output_path, new_frames, motion_after from {ACCELERATED_VIDEOS} "
                     "where status = 'accelerated' qualify row_number() over (partition by video_id order by output_path) = 1"
                     ") a on a.video_id = c.video_id")
    else:
        joins.append("left join (select null::varchar as video_id, null::varchar as output_path, "
                     "null::bigint as new_frames, null::double as motion_after) a on false")
    accelerated = "a.output_path is not null"
    columns += [f"{accelerated} as accelerated", "a.output_path",
                f"case when {accelerated} then a.new_frames else r.frame_count end as frame_count"]
    for column in score_columns():
        if column == "motion_score":
            columns.append(f"case when {accelerated} then a.motion_after else c.motion_score end as motion_score")
        else:
            # a score declared after these rows were judged (a new plugin) reads as null until re-judged
            columns.append(f"c.{_q(column)}" if column in curated else f"null::double as {_q(column)}")
    # `scores_profile` per clip: 'tiny' when any of its learned scores (those noisy under the tiny
    # profile: aesthetics, CLIP similarity) or its generated caption came from a tiny
    # random-weight model, else 'real'. The tiny rows' keys are gathered first (a filtered scan
    # of one column; none in a real run): a join, or `exists`, with every row of each table
    # cost most of the choice at ten million clips.
    tiny = [f"coalesce(c.model_profile, '') = '{TINY_PROFILE}'"] if "model_profile" in curated else []
    if noisy:
        steps.append("create temp table _tiny as select distinct * from (" + " union all ".join(
            f"select video_id, shard from \"{t}\" where profile = '{TINY_PROFILE}'" for t in noisy) + ")")
        joins.append("left join (select *, true as tiny from _tiny) k on k.video_id = c.video_id and k.shard = c.shard")
        tiny.append("k.tiny is not null")
    columns.append(f"case when {' or '.join(tiny or ['false'])} then '{TINY_PROFILE}' else 'real' end as scores_profile")
    # the caption's presence, not its text, goes through the joins (the text in the hash
    # tables cost a third of the candidates' time at ten million clips)
    kept = (f"(select * exclude (caption), caption is not null as has_caption from {CURATED_VIDEOS} "
            "where status = 'kept')")
    steps.append(f"create temp table {_CANDIDATES} as select {', '.join(columns)} from {kept} c {' '.join(joins)}")
    return steps


def _q(column: str) -> str:
    return f'"{column}"'


def _write_outputs(out_dir: Path, chosen: pl.DataFrame, n_kept: int, n_eligible: int, ineligible: dict[str, int],
                   budget: float, shape, config) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    # EasyAnimate reads file_path/text/type; the extra keys say where the caption and scores
    # came from. data-juicer keeps fields it does not know, so the mark travels with each sample.
    _atomic_stream(out_dir / "metadata.json", _json_array(_text_chunks(chosen, _metadata_entry)))
    _atomic_stream(out_dir / "data_juicer.jsonl", _text_chunks(chosen, _data_juicer_line))
    pixels_used = float(chosen["pixels"].sum()) if chosen.height else 0.0
    tiny_clips = int((chosen["scores_profile"] == TINY_PROFILE).sum()) if chosen.height else 0
    summary = {
        # 'tiny' when any selected clip was ranked or captioned by tiny random-weight models (noise)
        "scores_profile": TINY_PROFILE if tiny_clips else "real", "tiny_profile_clips": tiny_clips,
        "preset": config.preset, "frames": shape.frames, "height": shape.height, "width": shape.width,
        "epochs": config.epochs, "kept_clips": n_kept, "eligible_clips": n_eligible, "clips": chosen.height,
        "accelerated_clips": int(chosen["accelerated"].sum()) if chosen.height else 0,
        "pixels_used": pixels_used, "pixel_budget": budget, "budget_used": round(pixels_used / budget, 6) if budget else 0.0,
        "ineligible": ineligible,
        "score_means": {c: (float(chosen[c].mean()) if chosen.height and chosen[c].null_count() < chosen.height else None)
                        for c in score_columns()},
        "weights": config.weights,
    }
    if tiny_clips:
        summary["warning"] = (f"{tiny_clips} of {chosen.height} clips were ranked by tiny random-weight models "
                              "(CURATION_MODEL_PROFILE=tiny); their composite ranks and generated captions are noise: "
                              "not a training set to train on")
    _atomic_write(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary


def _file_exists(path: str) -> bool:
    if "://" in path:
        import fsspec

        fs, inner = fsspec.core.url_to_fs(path, use_listings_cache=False)  # written by other processes
        return fs.isfile(inner)
    return os.path.isfile(path)  # a Path per file cost 2.5x (4 s at half a million clips)


def _atomic_write(path: Path, text: str) -> None:
    _atomic_stream(path, [text])


def _atomic_stream(path: Path, parts) -> None:
    """Write the parts to a temp file, then rename it over `path` (readers never see half)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for part in parts:
            f.write(part)
    tmp.replace(path)


_CHUNK = 50_000  # clips whose text is made at once: half a million clips' text at once was 300 MB more


def _text_chunks(chosen: pl.DataFrame, entry):
    """The text of `entry` (an expression: one clip's text) for every chosen clip, a chunk at a
    time. Made by polars, not a json.dumps per clip (seconds at half a million clips)."""
    for offset in range(0, chosen.height, _CHUNK):
        yield "".join(chosen.slice(offset, _CHUNK).select(entry().alias("text"))["text"].to_list())


def _json_string(column: str) -> pl.Expr:
    """The column's values as JSON strings (null as null), escaped as json.dumps(ensure_ascii=False) does."""
    return _json_value(pl.col(column))


def _json_value(value: pl.Expr) -> pl.Expr:
    return pl.struct(value.alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")


def _metadata_entry() -> pl.Expr:
    """One clip in metadata.json, as json.dumps(entry, indent=2) inside an indented array, then ',\n'."""
    fields = [("file_path", _json_string("file_path")), ("text", _json_string("caption")), ("type", pl.lit('"video"')),
              ("caption_source", _json_string("caption_source")), ("scores_profile", _json_string("scores_profile"))]
    parts = [pl.lit("  {\n")]
    for i, (key, value) in enumerate(fields):
        parts += [pl.lit(f'    "{key}": '), value, pl.lit(",\n" if i < len(fields) - 1 else "\n")]
    return pl.concat_str([*parts, pl.lit("  },\n")])


def _data_juicer_line() -> pl.Expr:
    caption = pl.concat_str([pl.lit("<__dj__video> "), pl.col("caption"), pl.lit(" <|__dj__eoc|>")])
    return pl.concat_str([pl.lit('{"videos": ['), _json_string("file_path"), pl.lit('], "text": '),
                          _json_value(caption),
                          pl.lit(', "scores_profile": '), _json_string("scores_profile"), pl.lit("}\n")])


def _json_array(chunks):
    """json.dumps(list, indent=2)'s text from chunks of entries each ending in ',\n'."""
    first = True
    for chunk in chunks:
        if chunk:
            yield ("[\n" if first else ",\n") + chunk[:-2]
            first = False
    yield "[]" if first else "\n]"
