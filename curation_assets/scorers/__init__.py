"""Scorer logic as plain functions: no Dagster, no storage. Assets wire these up."""
