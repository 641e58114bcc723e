"""One clip, explained: what its scores were computed from.

The sampled frames (keys under the store), the OCR boxes on the frame they came from with
each frame's area ratio, every frame score per frame (CLIP similarity, aesthetics, a
plugin's), motion per sampled frame pair, and the near-duplicate match. Read from one
object per table (the clip's shard) for the server; `all_details` reads every clip at once
for the gallery's static copy. Rows written before a column existed say so in `notes`.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from curation_assets.scores import FRAMES, all_scores

SAMPLED_FRAMES = "sampled_frames"
MOTION = "motion"
RAW_VIDEOS = "raw_videos"
NEAR_DUPLICATES = "near_duplicates"


def clip_detail(store, video_id: str, shard: str) -> dict[str, Any]:
    """The detail of one clip of `shard`."""
    tables = store.tables()

    def row(table: str) -> dict | None:
        if table not in tables:
            return None
        rows = store.read_shard(table, shard).filter(pl.col("video_id") == video_id)
        return rows.row(0, named=True) if rows.height else None

    frame_scores = {decl.name: row(decl.name) for decl in _frame_score_decls()}
    return assemble(video_id, shard, row(SAMPLED_FRAMES), row(MOTION), row(RAW_VIDEOS), row(NEAR_DUPLICATES),
                    frame_scores)


def all_details(store, video_ids: list[str] | None = None, within: str = "true") -> dict[str, dict]:
    """video_id -> detail, for every scored clip, or for these (the static copy carries the
    details of the clips it shows; `within`: an SQL condition on `shard` they all meet, which
    lets DuckDB skip the rest of each table)."""
    tables = store.tables()
    wanted = {SAMPLED_FRAMES: ["video_id", "shard", "frame_indices", "timestamps", "frame_paths", "width", "height",
                               "error"],
              MOTION: ["video_id", "motion_score", "pair_scores", "frame_indices", "error"],
              RAW_VIDEOS: ["video_id", "fps", "duration_s"],
              NEAR_DUPLICATES: ["video_id", "near_duplicate_of", "similarity", "threshold"]}
    wanted.update({decl.name: ["video_id", decl.value, "frame_scores", "frame_boxes", "error"]
                   for decl in _frame_score_decls()})
    wanted = {table: columns for table, columns in wanted.items() if table in tables}
    # every table on one connection (a connection per table bound its view each time: seconds
    # at ten million clips); the shards' rows, then the shown clips among them here: a join
    # inside DuckDB made it read past the shards' row groups (1.6 s a table, not 0.7)
    present = store.columns(list(wanted))
    where = "" if video_ids is None else f" where {within}"
    found = store.query_steps([f'select {_listed(c for c in columns if c in present[table])} from "{table}"{where}'
                               for table, columns in wanted.items()])
    shown = pl.Series(list(video_ids or []), dtype=pl.Utf8).implode()
    by_table = {table: {r["video_id"]: r for r in (rows if video_ids is None else rows.filter(
                    pl.col("video_id").is_in(shown))).iter_rows(named=True)}
                for table, rows in zip(wanted, found)}
    frames, motion, raw, near = (by_table.get(t, {}) for t in (SAMPLED_FRAMES, MOTION, RAW_VIDEOS, NEAR_DUPLICATES))
    scores = {decl.name: by_table.get(decl.name, {}) for decl in _frame_score_decls()}
    return {vid: assemble(vid, f.get("shard"), f, motion.get(vid), raw.get(vid), near.get(vid),
                          {name: by_id.get(vid) for name, by_id in scores.items()})
            for vid, f in frames.items()}


def shown_details(store, data: dict) -> dict[str, dict]:
    """The details a page of `gallery_data` carries: every clip's, or, for a sample, the sampled
    clips' (read within the shards the sample was drawn from)."""
    if not data["sampled"]:
        return all_details(store)
    return all_details(store, data["clips"]["video_id"], data["sample_where"])


def _listed(columns) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _frame_score_decls():
    return [decl for decl in all_scores() if decl.reads == FRAMES]


def assemble(video_id: str, shard: str | None, frames: dict | None, motion: dict | None, raw: dict | None,
             near: dict | None, frame_scores: dict[str, dict | None]) -> dict[str, Any]:
    notes: list[str] = []
    fps = (raw or {}).get("fps")
    out: dict[str, Any] = {"video_id": video_id, "shard": shard, "fps": fps, "frames": [], "per_frame": {},
                           "boxes": None, "motion": None, "near_duplicate": None, "notes": notes}
    if frames is None or frames.get("error") or not frames.get("frame_paths"):
        notes.append("no sampled frames: " + ((frames or {}).get("error") or "sampled_frames has no row for this clip"))
    else:
        paths = frames["frame_paths"]
        indices = frames.get("frame_indices") or [None] * len(paths)
        stamps = frames.get("timestamps") or [None] * len(paths)
        out["frames"] = [{"key": key, "index": index, "time": stamp}
                         for key, index, stamp in zip(frames["frame_paths"], indices, stamps)]
        out["size"] = [frames.get("width"), frames.get("height")]
    for decl in _frame_score_decls():
        row = frame_scores.get(decl.name)
        if row is None:
            continue
        if row.get("error"):
            notes.append(f"{decl.name}: {row['error']}")
            continue
        if row.get("frame_scores") is not None:
            out["per_frame"][decl.value] = _clean(row["frame_scores"])
        if "frame_boxes" in decl.columns:  # a score that keeps boxes: older rows have none
            if row.get("frame_boxes") is None:
                notes.append(f"{decl.name}: no boxes stored (scored before boxes were kept; re-materialize "
                             f"{decl.name} to see them)")
            else:
                out["boxes"] = {"score": decl.name, "column": decl.value, "per_frame": row["frame_boxes"]}
    if motion is not None and not motion.get("error") and motion.get("pair_scores") is not None:
        indices = motion.get("frame_indices") or []
        out["motion"] = {"score": _clean([motion.get("motion_score")])[0],
                         "pairs": [{"from": a, "to": b, "score": s} for a, b, s in
                                   zip(indices, indices[1:], _clean(motion["pair_scores"]))]}
    elif motion is not None and motion.get("error"):
        notes.append(f"motion: {motion['error']}")
    if near is not None and near.get("near_duplicate_of"):
        out["near_duplicate"] = {"of": near["near_duplicate_of"], "similarity": near.get("similarity"),
                                 "threshold": near.get("threshold")}
    return out


def _clean(values) -> list:
    """NaN is not JSON: null instead."""
    return [None if v is None or v != v else float(v) for v in (values or [])]
