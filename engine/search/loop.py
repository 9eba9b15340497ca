"""The search itself: an algorithm spends a budget of evaluations on a space; every evaluation is
recorded with the hypervolume reached so far, and the result holds the front found.

Where the whole space is known (a task's stored runs) the result also holds the true front's
hypervolume on the same scale, and the trace the CLI and the page show is the share of it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine import pareto
from engine.search.algorithms import ALGORITHMS, DEFAULT_ALGORITHM
from engine.search.evaluators import Sequential
from engine.search.indicator import RAW_LABEL, SHARE_LABEL, hv_normalized, hv_text, transform
from engine.search.space import Space


@dataclass
class SearchResult:
    evaluated: pd.DataFrame  # runs in the order evaluated (failed ones have NaN objectives)
    front: pd.DataFrame
    hypervolume: list[float]  # normalized hypervolume after each evaluation
    order: list[int]  # space indices in evaluation order
    space: Space
    hv_true: float | None = None  # the true front's hypervolume on the same scale (whole space known)

    @property
    def share(self) -> list[float] | None:
        """The hypervolume trace as shares of the true front's, where that is known."""
        return [h / self.hv_true for h in self.hypervolume] if self.hv_true else None

    @property
    def trace(self) -> list[float]:
        """What to show: the share where the true front is known, else the raw hypervolume."""
        return self.share or self.hypervolume

    @property
    def trace_label(self) -> str:
        return SHARE_LABEL if self.hv_true else RAW_LABEL

    def summary(self) -> str:
        """The last value of the trace in words, the same on the CLI and the page."""
        return hv_text(self.trace[-1], bool(self.hv_true))


@dataclass
class _State:
    """What an algorithm reads of the evaluations so far."""
    order: list[int] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    T: list[np.ndarray] = field(default_factory=list)  # transformed objectives per evaluation


def search(
    space: Space,
    evaluate: Callable[[int], dict | None],
    objectives: Sequence[str],
    maximize: Sequence[bool],
    budget: int,
    seed: int = 0,
    algorithm: str | None = None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    on_step: Callable[[int, dict | None, float], None] | None = None,
    pool=None,
) -> SearchResult:
    """Evaluate at most ``budget`` distinct configurations of ``space``, chosen by ``algorithm``
    (a key of ALGORITHMS). ``bounds`` (lo, hi of the transformed objectives) fixes the
    hypervolume scale; without it the whole space's values set it where the space holds them, else
    the evaluated points (recomputed each step). ``on_step(n, row, value)`` gets the trace's value
    (SearchResult.trace). ``pool`` evaluates several at once (see Sequential, the default, for
    what it offers)."""
    if budget < 1:
        raise ValueError("The budget must be at least one evaluation.")
    algorithm = algorithm or DEFAULT_ALGORITHM
    if algorithm not in ALGORITHMS:
        raise ValueError(f"Unknown search algorithm '{algorithm}'; use {', '.join(ALGORITHMS)}.")
    budget = min(int(budget), len(space))
    n_obj = len(objectives)
    hv_true = None
    known = space.values(objectives)
    if known is not None:  # the whole space is known: its front is the 100 %
        T_all = transform(known, maximize)
        bounds = bounds if bounds is not None else (T_all.min(axis=0), T_all.max(axis=0))
        hv_true = hv_normalized(T_all, *bounds)
    st = _State()
    hv_hist: list[float] = []

    def record(i: int, row: dict | None) -> None:
        vals = np.full(n_obj, np.nan)
        if row is not None:
            vals = np.array([float(row.get(o)) if row.get(o) is not None else np.nan for o in objectives])
        st.order.append(int(i))
        st.rows.append(row if row is not None else {**space.config(int(i)), "status": "failed"})
        st.T.append(transform(vals[None, :], maximize)[0])
        T = np.array(st.T)
        if bounds is not None:
            hv = hv_normalized(T, *bounds)
        else:
            ok = T[np.isfinite(T).all(axis=1)]
            hv = hv_normalized(T, ok.min(axis=0), ok.max(axis=0)) if len(ok) else 0.0
        hv_hist.append(hv)
        if on_step:
            on_step(len(st.order), st.rows[-1], hv / hv_true if hv_true else hv)

    ALGORITHMS[algorithm](space, _Runner(pool or Sequential(evaluate), record), st, budget, seed, n_obj)

    if bounds is None and hv_hist:  # one scale for the whole history: the final evaluated bounds
        T = np.array(st.T)
        ok = T[np.isfinite(T).all(axis=1)]
        if len(ok):
            hv_hist = [hv_normalized(T[: n + 1], ok.min(axis=0), ok.max(axis=0)) for n in range(len(T))]
    evaluated = pd.DataFrame(st.rows)
    T = np.array(st.T)
    ok = np.isfinite(T).all(axis=1)
    mask = np.zeros(len(T), bool)
    if ok.any():
        mask[ok] = pareto.non_dominated(T[ok], False)
    front = evaluated[mask]
    if objectives[0] in front.columns:
        front = front.sort_values(objectives[0], ascending=not maximize[0], kind="stable")
    return SearchResult(evaluated, front.reset_index(drop=True), hv_hist, st.order, space, hv_true)


class _Runner:
    """What an algorithm calls: ``run(i)`` evaluates one configuration and records it; a batch
    method ``submit``s up to ``slots`` and ``collect``s them as they finish."""

    def __init__(self, pool, record: Callable[[int, dict | None], None]):
        self.pool, self.record = pool, record
        self.slots = max(int(getattr(pool, "slots", 1)), 1)
        self.pending: list[int] = []

    def __call__(self, i: int) -> None:
        self.submit(i)
        while i in self.pending:
            self.collect()

    def submit(self, i: int) -> None:
        self.pool.submit(int(i))
        self.pending.append(int(i))

    def collect(self) -> None:
        i, row = self.pool.next()
        self.pending.remove(i)
        self.record(i, row)
