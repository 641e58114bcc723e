"""A shard's kept and rejected clips side by side, as one PNG for the Dagster UI.

curated_videos puts it in each shard's materialization metadata (Markdown with the PNG
inline, which the UI renders), so a shard's verdicts can be eyeballed from the asset page a
user already has open. Thumbnails are each clip's preview (its first frame) or, in a data
dir written before previews, its middle sampled frame; a rejected clip's first rule is
printed under it.
"""

from __future__ import annotations

import io

import polars as pl

THUMB_W, THUMB_H, LABEL_H, PAD = 160, 90, 18, 6
PER_ROW = 6  # ~1000 px: the UI's Markdown dialog shows it unscaled


def contact_sheet_png(store, curated: pl.DataFrame, frames: pl.DataFrame, per_status: int = 16) -> bytes | None:
    """`curated`: the shard's curated_videos rows; `frames`: its sampled_frames rows. None when
    no kept or rejected clip has an image."""
    from PIL import Image, ImageDraw, ImageFont

    images = _images(frames)
    bands = []
    for status in ("kept", "rejected"):
        rows = curated.filter(pl.col("status") == status)
        tiles = []
        for row in rows.iter_rows(named=True):
            if len(tiles) >= per_status:
                break
            thumb = _thumb(store, images.get(row["video_id"]))
            if thumb is not None:
                reasons = row.get("reasons") or []
                tiles.append((thumb, reasons[0] if reasons else (row["path"] or "").rsplit("/", 1)[-1]))
        bands.append((f"{status}: {rows.height} clips" + (f" (first {len(tiles)} shown)" if rows.height > len(tiles) else ""),
                      tiles))
    if not any(tiles for _, tiles in bands):
        return None
    font, title_font = ImageFont.load_default(size=12), ImageFont.load_default(size=15)
    cell_h = THUMB_H + LABEL_H + PAD
    height = sum(24 + max(1, -(-len(tiles) // PER_ROW)) * cell_h for _, tiles in bands) + PAD
    width = PER_ROW * (THUMB_W + PAD) + PAD
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    y = PAD
    for title, tiles in bands:
        draw.text((PAD, y), title, fill=(29, 35, 48), font=title_font)
        y += 24
        for k, (thumb, label) in enumerate(tiles):
            x = PAD + (k % PER_ROW) * (THUMB_W + PAD)
            ty = y + (k // PER_ROW) * cell_h
            sheet.paste(thumb, (x + (THUMB_W - thumb.width) // 2, ty + (THUMB_H - thumb.height) // 2))
            draw.text((x, ty + THUMB_H + 2), label[:24], font=font,
                      fill=(142, 31, 22) if "<" in label or ">" in label else (74, 81, 96))
        y += max(1, -(-len(tiles) // PER_ROW)) * cell_h
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _images(frames: pl.DataFrame) -> dict[str, str]:
    """video_id -> the key of its preview, else of its middle sampled frame."""
    out = {}
    has_preview = "preview_path" in frames.columns
    for row in frames.iter_rows(named=True):
        paths = row.get("frame_paths") or []
        key = (row.get("preview_path") if has_preview else None) or (paths[len(paths) // 2] if paths else None)
        if key:
            out[row["video_id"]] = key
    return out


def _thumb(store, key: str | None):
    from PIL import Image

    if not key:
        return None
    try:
        image = Image.open(io.BytesIO(store.location.read_bytes(key)))
        image.seek(0)  # an animated preview: its first frame
        image = image.convert("RGB")
    except Exception:  # a missing or unreadable image costs its tile, not the sheet
        return None
    image.thumbnail((THUMB_W, THUMB_H))
    return image
