"""How metrics read in every table cxr_tf prints or writes (evaluate's summary, reports, comparisons)."""

from __future__ import annotations

import math
from typing import Any, Sequence


def fmt(value: float | None, digits: int = 3) -> str:
    """A metric with ``digits`` decimals; ``n/a`` for a missing or undefined value."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def interval(ci: Sequence[float] | None, digits: int = 3) -> str:
    """``[0.871, 0.950]``; ``n/a`` without an interval."""
    return "n/a" if not ci else f"[{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]"


def with_ci(value: float | None, ci: Sequence[float | None] | None, digits: int = 3) -> str:
    """``0.912 [0.871, 0.950]``: a value and its confidence interval; the value alone without a whole
    interval (a bound is None where the bootstrap had nothing to resample), ``n/a`` without a value."""
    if value is None or not ci or None in ci:
        return fmt(value, digits)
    return f"{fmt(value, digits)} {interval(ci, digits)}"


def summary_table(metrics: dict[str, Any]) -> str:
    """A ``metrics.json`` dict as a fixed-width text table: per class, then mean AUC [95 % CI].

    Multilabel: n, positives, AUC [CI], AP, threshold, sensitivity, specificity. Multiclass: n, AUC [CI],
    precision, recall, F1, then accuracy.
    """
    classes = metrics["classes"]
    width = max(len("class"), *map(len, classes))
    multiclass = metrics["task"] == "multiclass"
    header = ["n", "AUC [95% CI]", "precision", "recall", "F1"] if multiclass else \
        ["n", "pos", "AUC [95% CI]", "AP", "thr", "sens", "spec"]
    widths = [5, 22, 9, 9, 6] if multiclass else [5, 5, 22, 6, 6, 6, 6]
    lines = [f"{'class':<{width}}  " + "  ".join(f"{h:>{w}}" for h, w in zip(header, widths))]
    for name, c in classes.items():
        if multiclass:
            cells = [str(c["n"]), with_ci(c["auc"], c.get("auc_ci")), fmt(c["precision"]), fmt(c["recall"]),
                     fmt(c["f1"])]
        else:
            cells = [str(c["n"]), str(c["positives"]), with_ci(c["auc"], c.get("auc_ci")), fmt(c["ap"]),
                     fmt(c["threshold"]), fmt(c["sensitivity"]), fmt(c["specificity"])]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(cells, widths)))
    lines.append(f"mean AUC {with_ci(metrics['mean_auc'], metrics.get('mean_auc_ci'))}")
    if multiclass:
        lines.append(f"accuracy {fmt(metrics['accuracy'])}")
    return "\n".join(lines)
