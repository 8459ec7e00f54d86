"""Runs: naming a run, planning its training, its cache keys, its metrics document, its provenance."""
