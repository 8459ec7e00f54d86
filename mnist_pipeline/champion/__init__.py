"""Champion: the promotion rule, the champion registry, and which saved models to keep."""
