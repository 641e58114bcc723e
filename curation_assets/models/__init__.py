"""Model loading for the learned scorers. Heavy libraries are imported inside functions."""
