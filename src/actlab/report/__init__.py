"""Figures and the report, built from a run's stored results only."""
