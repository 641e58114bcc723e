"""The review gallery: every clip as a card, thresholds tuned by looking (docs/review.md).

`curation-assets review` serves it (server.py); the score_report asset writes a static,
self-contained copy (page.py); the page re-judges clips in the browser exactly as
curated_videos does (thresholds.py says how, static/gallery.js does it).
"""
