"""Dataflows: ingest, candles and (later) signals; Bytewax stays behind this package."""
