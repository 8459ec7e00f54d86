"""Modeling: the model registry, architectures, training profiles, training and evaluation."""
