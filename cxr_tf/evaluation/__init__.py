"""Evaluation: metrics with patient-level bootstrap confidence intervals, calibration, operating points,
subgroups, paired comparisons of runs, error galleries, reports, explanations."""
