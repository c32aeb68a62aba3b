"""Reproduce the reference studies: run their presets, check their claims against our runs and
log one report per study (`python -m tunelab.reproduce`)."""
