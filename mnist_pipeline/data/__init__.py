"""Data: sources, formats, the Parquet store and its versions, under one data directory."""
