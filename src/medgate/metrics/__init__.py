"""Metrics shared by more than one task. Pure functions, except where a library loads a model."""
