from curation_assets.store.score_store import SHARD_WRITES, ScoreStore, StoreError

__all__ = ["SHARD_WRITES", "ScoreStore", "StoreError"]
