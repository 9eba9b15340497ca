"""Where runs lie, counted on a grid over a plot's two axes: Explore draws the dominated runs as
this shaded layer behind the front, in place of the runs one by one, once there are more than
DENSITY_FROM of them (Recommend its infeasible and its feasible runs off the front, a layer each).
It shows every run, where a drawn sample showed 2,000 of 1,000,000, and it costs the browser one
image: each SVG marker costs 0.15-0.3 ms to draw in headless chromium, so 1,433 dominated runs
added 0.2-0.45 s to the page (bench/bench_browser.py), and past about a thousand 5-pixel markers
on a plot the runs hide one another anyway."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DENSITY_FROM = 1000  # more runs off the front than this are drawn as a density
BINS = (120, 60)  # cells along x and along y: about 8 pixels each on the page's plot
HOW_TO_READ = "darker: more runs; hover a cell for its count"  # said wherever a page draws one


@dataclass
class Density:
    x_cuts: np.ndarray  # cell edges on the axis' own scale: the value, or its log10 on a log axis
    y_cuts: np.ndarray
    counts: np.ndarray  # runs per cell, shape (len(y_cuts) - 1, len(x_cuts) - 1): a row per y cell
    left_out: int  # runs the plot cannot place (a value <= 0 on a log axis, as plotly leaves out; NaN)
    log_x: bool = False
    log_y: bool = False

    @property
    def x_edges(self) -> np.ndarray:
        """Cell edges along x in the data's units (evenly spaced in log10 on a log axis)."""
        return 10.0 ** self.x_cuts if self.log_x else self.x_cuts

    @property
    def y_edges(self) -> np.ndarray:
        return 10.0 ** self.y_cuts if self.log_y else self.y_cuts

    @property
    def n_runs(self) -> int:
        return int(self.counts.sum())


def _edges(v: np.ndarray, bins: int) -> np.ndarray:
    """``bins`` + 1 evenly spaced edges spanning ``v`` (values on the axis' own scale)."""
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.0, 1.0)
    if hi <= lo:  # every run alike on this axis: one cell's width around it
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def density(x: np.ndarray, y: np.ndarray, log_x: bool = False, log_y: bool = False,
            bins: tuple[int, int] = BINS, like: Density | None = None) -> Density:
    """Counts of the points (x, y) on a ``bins`` grid spanning them, or on the grid of ``like``
    (layers drawn together share their cells); a log axis is cut evenly in log10. A point a plot
    cannot place (a missing value, or one <= 0 on a log axis) is left out and counted in
    ``left_out``, as is one outside ``like``'s grid."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    if log_x:
        keep &= x > 0
    if log_y:
        keep &= y > 0
    # counted on the axis' own scale, so each cell is as wide on the page as the next
    sx, sy = (np.log10(x[keep]) if log_x else x[keep]), (np.log10(y[keep]) if log_y else y[keep])
    if like is None:
        ex, ey = _edges(sx, bins[0]), _edges(sy, bins[1])
    elif (like.log_x, like.log_y) != (log_x, log_y):
        raise ValueError("A density counted on another's grid takes that grid's log axes.")
    else:
        ex, ey = like.x_cuts, like.y_cuts
    counts, _, _ = np.histogram2d(sx, sy, bins=[ex, ey])
    counts = counts.T.astype(np.int64)
    return Density(ex, ey, counts, len(x) - int(counts.sum()), log_x, log_y)
