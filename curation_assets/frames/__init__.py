"""Sampled frames: image files under the store location (files.py) and bounded chunks of them in memory (chunks.py)."""
