"""Residual thresholds that depend on the sampling ratio f = m / n."""

from __future__ import annotations

import numpy as np

from dip_lightning.errors import DipLightningError

Threshold = float | dict[float, float] | None
"""One threshold for every sampling ratio, a table ``{f: threshold}`` (:func:`threshold_at_ratio`), or none."""


def threshold_at_ratio(table: Threshold, ratio: float, option: str) -> float | None:
    """A residual threshold at sampling ratio f = m / n (``suspect_residual``, ``retry.residual``): one number is
    the threshold at every f (``None`` none), a table ``{f_j: t_j}`` holds thresholds measured at other ratios.

    With the table's ratios f_1 < ... < f_k and thresholds t_1, ..., t_k: t_1 for f <= f_1, t_k for
    f >= f_k, and between f_j and f_{j+1} the straight line
    :math:`t_j + (f - f_j) (t_{j+1} - t_j) / (f_{j+1} - f_j)`.
    """
    if not isinstance(table, dict):
        return table
    entries = sorted((float(f), float(t)) for f, t in table.items())
    if not entries or any(not f > 0 or not t > 0 for f, t in entries):
        raise DipLightningError(
            f"--model.{option} {table} must map sampling ratios f = m / n to thresholds (or weights), both positive, "
            "e.g. {0.3: 0.13, 1.0: 0.2}")
    ratios, thresholds = zip(*entries)
    return float(np.interp(ratio, ratios, thresholds))  # constant beyond the ends, as documented
