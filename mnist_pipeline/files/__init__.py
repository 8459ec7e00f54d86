"""Files: atomic writes and cross-process locks, used by every stage that writes."""
