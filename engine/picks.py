"""How a recommendation picks one run from the Pareto front: the strategies, by name.

Each strategy orders the front's rows best first, on objectives scaled to [0, 1] for
minimisation (log-scaled where positive and spanning a decade, so 1 J vs 2 J counts like 10 J
vs 20 J). The decision making is pymoo's, called rather than re-coded:

- ``best``: one objective: its best value first.
- ``weights``: pymoo's PseudoWeights picks the front point whose pseudo-weights are nearest the
  person's weights; the rest follow by the same distance, from the pseudo-weights pymoo returns.
- ``knee``: pymoo's HighTradeoffPoints (the points whose move to any neighbour sacrifices most
  per unit gained); the nearest the ideal among them first. On the bundled data's 38 fronts of
  three or more points (four objective pairs, per task and per GPU) it names a knee on 36 and
  is nearer the ideal point than the hand-coded measure it replaced on 9 of the 12 where the
  two differ. Where no point stands out it names none, and ``ideal`` decides.
- ``ideal``: nearest the ideal point (the best of every objective), for fronts of one or two
  points and where no knee stands out.

``rank(F, maximize, weights)`` returns ``(order, how)``; ``how`` names the strategy that chose
the first row, for the recommendation's reason. Adding a strategy is one function and one
entry in ``STRATEGIES``.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from engine import pareto


def scaled(F: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Objectives mapped to [0, 1] for minimisation, log-scaled where positive and spanning a decade."""
    logs = [bool((col > 0).all() and col.max() / col.min() >= 10) for col in F.T]
    return np.nan_to_num(pareto.normalize(F, maximize, log=logs))


def _nearest_ideal(Z: np.ndarray) -> np.ndarray:
    return np.argsort(np.linalg.norm(Z, axis=1), kind="stable")


def best(F: np.ndarray, maximize: Sequence[bool], weights=None) -> tuple[np.ndarray, str]:
    return np.argsort(-F[:, 0] if maximize[0] else F[:, 0], kind="stable"), "best"


def ideal(F: np.ndarray, maximize: Sequence[bool], weights=None) -> tuple[np.ndarray, str]:
    return _nearest_ideal(scaled(F, maximize)), "ideal"


def by_weights(F: np.ndarray, maximize: Sequence[bool], weights: Sequence[float]) -> tuple[np.ndarray, str]:
    from pymoo.mcdm.pseudo_weights import PseudoWeights

    w = np.asarray(weights, float)
    w = w / w.sum()
    if len(F) == 1:
        return np.array([0]), "weights"
    Z = scaled(F, maximize)
    with np.errstate(divide="ignore", invalid="ignore"):  # an objective equal on every point
        pick, pw = PseudoWeights(w).do(Z, return_pseudo_weights=True)
    dist = np.abs(np.nan_to_num(pw, nan=1.0 / Z.shape[1]) - w).sum(axis=1)
    order = np.argsort(dist, kind="stable")
    return np.concatenate([[pick], order[order != pick]]), "weights"


def knee(F: np.ndarray, maximize: Sequence[bool], weights=None) -> tuple[np.ndarray, str]:
    from pymoo.mcdm.high_tradeoff import HighTradeoffPoints

    Z = scaled(F, maximize)
    if len(Z) <= 2:
        return _nearest_ideal(Z), "ideal"
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        knees = HighTradeoffPoints().do(Z)
    order = _nearest_ideal(Z)
    if knees is None or len(knees) == 0:
        return order, "ideal"
    first = order[np.isin(order, knees)][0]
    return np.concatenate([[first], order[order != first]]), "knee"


STRATEGIES: dict[str, Callable[..., tuple[np.ndarray, str]]] = {
    "best": best, "weights": by_weights, "knee": knee, "ideal": ideal,
}


def rank(F: np.ndarray, maximize: Sequence[bool], weights: Sequence[float] | None = None) -> tuple[np.ndarray, str]:
    """Order of preference over the front rows ``F`` (best first) and the strategy that chose."""
    name = "best" if F.shape[1] == 1 else "weights" if weights is not None else "knee"
    return STRATEGIES[name](F, maximize, weights)
