"""What the gallery shows, read from the store: one entry per curated clip, in columns.

Columns, not one object per clip: at 100,000 clips the page parses one array per field
(repeated strings such as the shard or the source video sent once, as a dictionary), which
is several times smaller and faster to parse. Everything a card, a sort, a filter or a
re-judge needs is here; a clip's frames and per-frame scores come separately (clip_detail.py).

What cannot be shown is said, never dropped silently (`problems`): no verdicts yet, shards
whose run failed (their videos appear as "not curated" cards), clips without a preview
(data dirs written before previews existed).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from typing import Any

import polars as pl

from curation_assets.curation.rules import FAILED, REJECTED, SPLIT
from curation_assets.review.thresholds import controls, off_note, pinned_keys, shared_thresholds
from curation_assets.scores import all_scores

CURATED = "curated_videos"
SAMPLED_FRAMES = "sampled_frames"
REGISTRY = "video_registry"
NOT_CURATED = "not curated"
# repeated strings sent as a dictionary + codes
_DICT_COLUMNS = ("shard", "status", "caption_source", "source_path", "model_profile")


def score_columns() -> dict[str, str]:
    """curated_videos column -> its score's name, for every declared value (sort and filter)."""
    return {curated: decl.name for decl in all_scores() for curated in decl.value_columns}


def gallery_data(store, recipe: dict, profile: str | None = None, recipe_info: dict | None = None,
                 shard_failures: dict[str, str] | None = None, limit: int | None = None) -> dict[str, Any]:
    """The page's data: clips (columns), the threshold controls, pins, the stored funnel, problems.

    recipe: the data dir's recipe (what curated_videos was judged with, and what the page's
    controls start from). shard_failures: shard -> why its last run failed (run history).
    limit: at most this many curated clips, a sample across verdicts chosen in SQL (the static
    copy beside the report: a million clips' data would not fit a page, nor the head node's
    memory); the page says so (`problems`), and `total` counts them all.
    """
    problems: list[dict[str, str]] = []
    tables = store.tables()
    curated, total, within = _curated(store, tables, problems, limit)
    sampled = total > curated.height
    curated = _with_media(store, tables, curated, problems, sampled, within)
    not_curated = _not_curated(store, tables, curated, shard_failures or {}, problems, sampled)
    total += not_curated.height
    curated = pl.concat([curated, not_curated], how="diagonal_relaxed")
    if tables and not curated.height:
        problems.append({"kind": "empty", "message": "no video is registered in this data dir yet"})
    elif not tables:
        problems.append({"kind": "no_data", "message": "this data dir holds no tables: run `curation-assets run "
                         "--input <videos> --data-dir <this dir>` first"})

    shared = shared_thresholds(recipe)
    pins, pin_index = _pins(recipe, curated)
    columns = _columns(curated, pin_index)
    return {
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "store": store.location.url,
        "recipe": recipe_info or {},
        "model_profile": profile,
        "controls": [c.as_json(shared.get(c.key)) for c in controls()],
        "off": off_note(recipe),
        "scores": [{"column": column, "score": name} for column, name in score_columns().items()],
        "pins": pins,
        "count": curated.height,
        "total": total,
        "sampled": sampled,
        "sample_where": within,  # the shards the sample came from, as SQL (the clips' details are read there)
        "clips": columns,
        "problems": problems,
    }


def _curated(store, tables: set, problems: list, limit: int | None = None) -> tuple[pl.DataFrame, int, str]:
    """The curated clips (all, or a sample of `limit` across verdicts), how many there are, and
    the SQL condition on `shard` the sample was drawn within ('true': the whole store)."""
    wanted = ["video_id", "path", "shard", "status", "reasons", "caption", "caption_source", "model_profile",
              *score_columns(), "source_path", "start_s", "end_s", "near_duplicate_of", "error"]
    if CURATED not in tables:
        if tables:
            problems.append({"kind": "no_scores", "message": "no verdicts yet (no curated_videos table): the "
                             "registered videos are shown as not curated; run `curation-assets run` to score them"})
        return pl.DataFrame(schema={"video_id": pl.Utf8, "path": pl.Utf8, "shard": pl.Utf8, "status": pl.Utf8}), 0, "true"
    present = store.query(f"select * from {CURATED} limit 0").columns
    missing = [c for c in score_columns() if c not in present]
    if missing:
        problems.append({"kind": "missing_columns", "message": f"curated_videos has no {', '.join(missing)} yet "
                         "(a score added after these clips were judged): those controls change nothing until "
                         "the clips are re-judged"})
    select = ", ".join(f'"{c}"' for c in wanted if c in present)
    counts = store.query(f"select status, count(*) as n from {CURATED} group by status")
    total = int(counts["n"].sum()) if counts.height else 0
    within = "true"
    if limit is not None and total > limit:
        within, drawn = sample_windows(store.winners(CURATED).select("shard", "rows"), SAMPLE_FROM * limit)
        # ordered: the message lists the verdicts the same way on every build
        counts = store.query(f"select status, count(*) as n from {CURATED} where {within} group by status order by status")
        quotas = sample_quotas(dict(zip(counts["status"].to_list(), counts["n"].to_list())), limit)
        # Which clips: each verdict's `quota` lowest hashes of video_id, kept by a top-n aggregate
        # over three light columns (a window over every row with its captions held them all in
        # memory); then their columns, for those rows only.
        # (the sample's rows are kept here, not by a join in DuckDB: that read past the shards' row groups)
        picked, rows = store.query_steps([
            f"select s.video_id, s.shard, s.path from (select status, unnest(min_by("
            f"{{'video_id': video_id, 'shard': shard, 'path': path}}, hash(video_id), {max(quotas.values())})) as s "
            f"from {CURATED} where {within} group by status) c join quotas q on c.status is not distinct from q.status "
            "qualify row_number() over (partition by c.status order by hash(s.video_id)) <= any_value(q.quota) "
            "over (partition by c.status)",
            f"select {select} from {CURATED} where {within}"],
            frames={"quotas": pl.DataFrame({"status": list(quotas), "quota": list(quotas.values())},
                                           schema={"status": pl.Utf8, "quota": pl.Int64})})
        frame = rows.join(picked, on=["video_id", "shard", "path"], how="semi").sort("shard", "path")
        shown = ", ".join(f"{n:,} {s}" for s, n in quotas.items())
        where = f" drawn from {drawn} shards spread over the store," if within != "true" else ""
        problems.append({"kind": "sampled", "message": f"this copy shows {frame.height:,} of {total:,} clips, a "
                         f"sample across verdicts{where} ({shown}); counts and re-judging here cover the sample: "
                         "`curation-assets review` shows every clip"})
    else:
        frame = store.query(f"select {select} from {CURATED} order by shard, path")
    return frame.with_columns([pl.lit(None, pl.Float64).alias(c) for c in missing]), total, within


SAMPLE_FROM = 4  # a sample of N clips is drawn from the clips of shards holding about 4 N
SAMPLE_WINDOWS = 8  # ... in this many runs of consecutive shards, spread evenly over the store


def sample_windows(shard_rows: pl.DataFrame, clips: int, windows: int = SAMPLE_WINDOWS) -> tuple[str, int]:
    """(SQL condition on `shard`, shards in it): runs of consecutive shards spread evenly over the
    store, together holding about `clips` rows ('true' when the store holds no more than that).

    A sample of clips from every shard reads every row group of every table it shows (ten
    million clips: a minute, most of it decoding list columns for rows the sample drops); a
    range of shards is what DuckDB skips row groups by, through their min/max statistics."""
    ordered = shard_rows.sort("shard")
    shards, rows = ordered["shard"].to_list(), ordered["rows"].to_list()
    covered: set[int] = set()
    for w in range(windows):
        start = end = w * len(shards) // windows
        held = rows[start] if shards else 0
        while held < clips / windows and end + 1 < len(shards):
            end += 1
            held += rows[end]
        covered.update(range(start, end + 1))
    if len(covered) >= len(shards):
        return "true", len(shards)
    runs: list[list[int]] = []
    for i in sorted(covered):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    condition = " or ".join(f"(shard between '{shards[a]}' and '{shards[b]}')" for a, b in runs)
    return f"({condition})", len(covered)


def sample_quotas(counts: dict, limit: int) -> dict:
    """Clips to show per verdict: each verdict at least its share of half the limit (so a rare
    one, e.g. failed, is seen), the rest in proportion to the counts."""
    floor = limit // (2 * max(1, len(counts)))
    quotas = {s: min(n, floor) for s, n in counts.items()}
    left = limit - sum(quotas.values())
    rest = {s: n - quotas[s] for s, n in counts.items()}
    spare = sum(rest.values())
    return {s: quotas[s] + (left * rest[s] // spare if spare else 0) for s in counts}


def _with_media(store, tables: set, curated: pl.DataFrame, problems: list, sampled: bool = False,
                within: str = "true") -> pl.DataFrame:
    """Each clip's preview key, and a sampled frame to show when it has none (sampled: read for
    the clips shown only, within the shards they were drawn from)."""
    if SAMPLED_FRAMES not in tables or not curated.height:
        return curated.with_columns(pl.lit(None, pl.Utf8).alias("preview"), pl.lit(None, pl.Utf8).alias("still"))
    present = store.query(f"select * from {SAMPLED_FRAMES} limit 0").columns
    preview = "preview_path" if "preview_path" in present else "null"
    only = f" and {within}" if sampled else ""  # the sample's shards; its clips are joined below
    media = store.query(
        f"select video_id, {preview} as preview, frame_paths[greatest(1, (len(frame_paths) + 1) // 2)] as still "
        f"from {SAMPLED_FRAMES} where error is null{only}")
    media = media.unique(subset=["video_id"], keep="first")
    out = curated.join(media, on="video_id", how="left")
    scored = out.filter(pl.col("status").is_in(["kept", "rejected"]) & pl.col("still").is_not_null())
    without = int(scored["preview"].is_null().sum()) if scored.height else 0
    if without:
        problems.append({"kind": "no_preview", "message": f"{without} clips have no preview (data written before "
                         "previews existed): their cards show a sampled frame instead; `curation-assets run --force` "
                         "re-decodes them and writes previews"})
    return out


def _not_curated(store, tables: set, curated: pl.DataFrame, failures: dict[str, str], problems: list,
                 sampled: bool = False) -> pl.DataFrame:
    """Registered videos with no verdict: their shard's run failed, or has not run yet (sampled:
    the curated clips shown are a sample, so the store answers which paths have no verdict)."""
    if REGISTRY not in tables:
        return pl.DataFrame()
    if sampled:
        from curation_assets.curation.funnel import funnel

        # only the shards the funnel's per-shard counts say lack verdicts are looked into: an
        # anti-join of the whole registry with every verdict took seconds at ten million clips
        lacking = sorted(funnel(store).not_curated_by_shard)
        if not lacking:
            return pl.DataFrame()
        missing = store.query(f"select path, shard from {REGISTRY} r where shard in (select shard from lacking) and not "
                              f"exists (select 1 from {CURATED} c where c.path = r.path and c.shard in "
                              "(select shard from lacking))", frames={"lacking": pl.DataFrame({"shard": lacking})})
    else:
        registered = store.query(f"select path, shard from {REGISTRY}")
        missing = registered.join(curated.select("path"), on="path", how="anti") if curated.height else registered
    if not missing.height:
        return pl.DataFrame()
    for shard, n in sorted(Counter(missing["shard"].to_list()).items()):
        why = failures.get(shard)
        problems.append({"kind": "shard_failed" if why else "not_run", "shard": shard,
                         "message": f"{shard} ({n} videos): " + (f"not curated, its last run FAILED: {why}" if why
                                                                 else "not curated yet (shard not run)")})
    return missing.with_columns(
        pl.lit(NOT_CURATED).alias("status"),
        pl.col("shard").map_elements(lambda s: [f"shard run failed: {failures[s]}" if s in failures
                                                else "shard not run yet"], return_dtype=pl.List(pl.Utf8)).alias("reasons"),
    ).sort("shard", "path")


def _pins(recipe: dict, curated: pl.DataFrame) -> tuple[list[dict], dict[tuple, int]]:
    """The distinct pin sets (see thresholds.pinned_keys) and (caption source, profile) -> index."""
    if not curated.height:
        return [], {}
    groups = curated.select(pl.col("caption_source") if "caption_source" in curated.columns else pl.lit(None),
                            pl.col("model_profile") if "model_profile" in curated.columns else pl.lit(None)).unique()
    sets: list[dict] = []
    index: dict[tuple, int] = {}
    for source, profile in groups.iter_rows():
        pins = pinned_keys(recipe, source, profile)
        if pins not in sets:
            sets.append(pins)
        index[(source, profile)] = sets.index(pins)
    return sets, index


def _columns(frame: pl.DataFrame, pin_index: dict[tuple, int]) -> dict[str, Any]:
    """The clips as JSON-ready columns (NaN scores sent as null: judge never rejects on either)."""
    n = frame.height
    frame = frame.with_columns([pl.lit(None, pl.Utf8).alias(c) for c in
                                ("video_id", "caption", "caption_source", "model_profile", "source_path",
                                 "near_duplicate_of", "preview", "still") if c not in frame.columns])
    frame = frame.with_columns([pl.lit(None, pl.Float64).alias(c) for c in ("start_s", "end_s")
                                if c not in frame.columns])
    if "reasons" not in frame.columns:
        frame = frame.with_columns(pl.lit([], pl.List(pl.Utf8)).alias("reasons"))
    status = frame["status"].to_list()
    reasons = [list(r or []) for r in frame["reasons"].to_list()]
    out: dict[str, Any] = {}
    for name in ("video_id", "path", "caption", "near_duplicate_of", "preview", "still"):
        out[name] = frame[name].to_list()
    for name in _DICT_COLUMNS:
        out[name] = _dictionary(frame[name].to_list() if name in frame.columns else [None] * n)
    out["reasons"] = reasons
    out["start_s"] = _floats(frame["start_s"])
    out["end_s"] = _floats(frame["end_s"])
    out["values"] = {c: _floats(frame[c]) if c in frame.columns else [None] * n for c in score_columns()}
    # the part of a verdict no threshold changes: failures, byte-identical copies, split sources
    out["fixed"] = [s not in ("kept", REJECTED) or any(r.startswith("duplicate_of:") for r in rs)
                    for s, rs in zip(status, reasons)]
    sources = frame["caption_source"].to_list()
    profiles = frame["model_profile"].to_list()
    out["pin"] = [pin_index.get((s, p), -1) for s, p in zip(sources, profiles)]
    return out


def _floats(series: pl.Series) -> list:
    if series.dtype.is_float():
        series = series.fill_nan(None)
    return series.to_list()


def _dictionary(values: list) -> dict[str, list]:
    """{"values": distinct values, "codes": index per row} (-1 for null)."""
    seen: dict = {}
    codes = []
    for v in values:
        if v is None:
            codes.append(-1)
            continue
        if v not in seen:
            seen[v] = len(seen)
        codes.append(seen[v])
    return {"values": list(seen), "codes": codes}


def funnel_lines(store, shard_failures: dict[str, str] | None = None) -> list[str]:
    """The funnel as `curation-assets status` prints it (the stored verdicts)."""
    from curation_assets.curation.funnel import funnel

    return funnel(store, shard_failures=shard_failures).lines()


def input_hint(store, tables: set | None = None) -> str | None:
    """The folder every registered video shares: what `run --input` most likely was."""
    tables = store.tables() if tables is None else tables
    if REGISTRY not in tables:
        return None
    # Every string between two others in sorted order shares their common prefix, so the
    # first and last paths have the folder they all share (no list of ten million paths).
    first, last = store.query(f"select min(path) as first, max(path) as last from {REGISTRY} "
                              "where path is not null and path <> ''").row(0)
    if first is None:
        return None
    try:
        common = os.path.commonpath([first, last])
    except ValueError:
        return None
    return common if first != last or not os.path.isfile(common) else os.path.dirname(common)


__all__ = ["FAILED", "NOT_CURATED", "SPLIT", "gallery_data", "funnel_lines", "input_hint", "score_columns"]
