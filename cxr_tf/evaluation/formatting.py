"""How metrics read in every table cxr_tf prints or writes (evaluate's summary, reports, comparisons)."""

from __future__ import annotations

import math
from typing import Sequence


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
