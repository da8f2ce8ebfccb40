"""Evaluation: metrics with patient-level bootstrap confidence intervals, reports, explanations."""
