"""Hypervolume, the one number a search is judged by, on the scale every comparison here uses:
objectives log10-scaled where positive, turned to minimisation, scaled to [0, 1] by bounds, and
measured against the reference point 1.1 in each objective. Where the whole space is known (a
task's stored runs, the lookup evaluator) the true front's hypervolume on the same scale is the
100 % a search's trace is a share of."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine import pareto
from engine.search.space import Space

SHARE_LABEL = "share of the true front's hypervolume"
RAW_LABEL = "hypervolume (scaled to the runs found)"


def transform(F: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Objectives as minimisation, log10 where positive (the scale every comparison here uses)."""
    F = np.asarray(F, float)
    out = np.empty_like(F)
    for j in range(F.shape[1]):
        col = F[:, j]
        pos = col[np.isfinite(col)]
        x = np.log10(col) if len(pos) and (pos > 0).all() else col
        out[:, j] = -x if maximize[j] else x
    return out


def hv_normalized(T: np.ndarray, lo: np.ndarray, hi: np.ndarray, ref: float = 1.1) -> float:
    """Hypervolume of transformed points scaled to [0, 1] by ``lo``/``hi``, reference ``ref``."""
    T = T[np.isfinite(T).all(axis=1)]
    if len(T) == 0:
        return 0.0
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    Z = (T - lo) / span
    return pareto.hypervolume(Z, np.full(T.shape[1], ref))


def _hvi_2d(front: np.ndarray, cand: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume each candidate would add to a 2-D minimisation front (vectorised)."""
    if len(front) == 0:
        return np.prod(np.maximum(ref - cand, 0), axis=1)
    f = front[np.argsort(front[:, 0])]
    keep = np.r_[True, f[1:, 1] < np.minimum.accumulate(f[:, 1])[:-1]]
    f = f[keep]
    xs = np.r_[-np.inf, f[:, 0], ref[0]]  # interval starts ... end
    hs = np.r_[ref[1], f[:, 1]]  # staircase height on [xs[i], xs[i+1])
    lo = np.maximum(xs[:-1][None, :], cand[:, :1])
    hi = np.minimum(xs[1:][None, :], ref[0])
    width = np.maximum(hi - lo, 0)
    height = np.maximum(np.minimum(hs[None, :], ref[1]) - cand[:, 1:2], 0)
    return (width * height).sum(axis=1)


def hv_improvement(front: np.ndarray, cand: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume each candidate row would add to a minimisation front (reference ``ref``)."""
    if cand.shape[1] == 2:
        return _hvi_2d(front, cand, ref)
    if cand.shape[1] == 1:
        best = front[:, 0].min() if len(front) else ref[0]
        return np.maximum(np.minimum(best, ref[0]) - cand[:, 0], 0)
    base = pareto.hypervolume(front, ref) if len(front) else 0.0
    return np.array([pareto.hypervolume(np.vstack([front, c[None]]), ref) - base for c in cand])


def true_front_hv(space: Space, objectives: Sequence[str],
                  maximize: Sequence[bool]) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """The hypervolume of the whole space's front and the bounds it is measured in (lookup)."""
    T = transform(space.configs[list(objectives)].to_numpy(float), maximize)
    lo, hi = T.min(axis=0), T.max(axis=0)
    return hv_normalized(T, lo, hi), (lo, hi)


def hv_text(value: float, share: bool) -> str:
    """How the CLI and the page both say a hypervolume: a share of the true front's where it is
    known, else the raw value, labelled so."""
    if share:
        return f"{100 * value:.1f} % of the true front's hypervolume"
    return f"hypervolume {value:.4f} (scaled to the runs found)"
