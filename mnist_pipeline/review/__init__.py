"""Unlabelled scans: queued by content, scored by the champion, labelled by people on the review page."""
