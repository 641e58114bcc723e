"""The score tables a full run writes, each with a column that must be filled in its rows:
what the engine and store tests compare between two runs of the same inputs."""

SCORE_TABLES = {
    "motion": "motion_score",
    "resolution": "width",
    "captions": "caption",
    "clip_similarity": "clip_similarity",
    "aesthetics": "aesthetics_score",
    "ocr_area": "ocr_area_ratio",
    "curated_videos": "status",
}
