"""The store: where score rows, frames and clips live (location.py), how its files are named
and which wins (layout.py, table_state.py), who writes and reads them (score_store.py), the
compactor (compaction.py, id_index.py) and the user's catalog (catalog.py). Exports resolve
lazily, so `curation_assets.store.location` (which the frame-file reader needs on a bare GPU
box) imports without DuckDB."""

__all__ = ["SHARD_WRITES", "ScoreStore", "StoreError", "StoreLocation", "StoreLocationError", "UnreadableObject"]


def __getattr__(name: str):
    if name in ("StoreLocation", "StoreLocationError"):
        from curation_assets.store import location

        return getattr(location, name)
    if name in ("SHARD_WRITES", "ScoreStore", "StoreError", "UnreadableObject"):
        from curation_assets.store import score_store

        return getattr(score_store, name)
    raise AttributeError(f"module 'curation_assets.store' has no attribute {name!r}")
