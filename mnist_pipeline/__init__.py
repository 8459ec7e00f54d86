"""Prefect-free core of the MNIST pipeline: data formats, checks, models, metrics, reports."""

__version__ = "0.1.0"
