"""Verdicts: the curation rules (keep / reject / fail) and the funnel that counts them."""
