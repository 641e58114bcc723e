"""The gallery page: one HTML file with its CSS and JavaScript inline.

Two ways to serve it, same page: by `curation-assets review` (data, clip details and media
fetched from the server, saving a recipe writes a file), or as a static, self-contained copy
the score_report asset writes next to the report (data and every clip's detail embedded;
media linked relative to the report when the store is a local folder; no server needed,
opens from file://).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_NAME = "gallery.html"  # under <data_dir>/reports/, beside score_report.md
# The static copy holds at most this many curated clips (a sample across verdicts past it,
# gallery_data's limit): at a million clips the whole gallery's data took 23 GB in the head
# node and the run was killed; `curation-assets review` serves every clip.
STATIC_CLIPS = 10_000


def to_json(value: Any) -> str:
    """Compact JSON a <script> element can hold ('</' cannot close it early)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str).replace("</", "<\\/")


def render_page(mode: str, title: str, media_base: str | None, data: dict | None = None,
                details: dict | None = None) -> str:
    """mode "server": the page fetches `api/...`; "static": `data` and `details` are embedded."""
    template = (STATIC_DIR / "gallery.html").read_text(encoding="utf-8")
    boot = {"mode": mode, "media_base": media_base, "title": title}
    embedded = ""
    if mode == "static":
        embedded = (f'<script id="gallery-data" type="application/json">{to_json(data)}</script>\n'
                    f'<script id="gallery-detail" type="application/json">{to_json(details or {})}</script>')
    # str.replace, not format(): the CSS and JavaScript are full of braces
    return (template.replace("/*__CSS__*/", (STATIC_DIR / "gallery.css").read_text(encoding="utf-8"))
            .replace("/*__JS__*/", (STATIC_DIR / "gallery.js").read_text(encoding="utf-8"))
            .replace("__TITLE__", _html(title)).replace("__BOOT__", to_json(boot)).replace("__DATA__", embedded))


def static_media_base(store_location, out_dir: Path) -> str | None:
    """How the static copy links previews and frames: relative to the report when the store is
    a local folder (the data dir, or a folder beside it); None for an object store."""
    if not store_location.is_local:
        return None
    rel = os.path.relpath(store_location.root, out_dir)
    return Path(rel).as_posix().rstrip("/") + "/"


def write_static_gallery(store, data: dict, details: dict, out_path: Path, title: str) -> Path:
    """Write the self-contained copy atomically; return its path."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    html = render_page("static", title, static_media_base(store.location, out_path.parent), data, details)
    if not store.location.is_local:
        data.setdefault("problems", []).append({
            "kind": "remote_media", "message": f"previews and frames live in {store.location.url}: this copy cannot "
            "show them; `curation-assets review` serves them"})
        html = render_page("static", title, None, data, details)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out_path)
    return out_path


def _html(text: str) -> str:
    import html

    return html.escape(text)
