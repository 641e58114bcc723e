from curation_assets.store.location import StoreLocation, StoreLocationError
from curation_assets.store.score_store import SHARD_WRITES, ScoreStore, StoreError

__all__ = ["SHARD_WRITES", "ScoreStore", "StoreError", "StoreLocation", "StoreLocationError"]
