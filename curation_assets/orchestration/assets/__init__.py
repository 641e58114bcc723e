"""Thin Dagster wiring: read a shard's inputs from the store, call a scorer, write rows."""
