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
from engine.search.algorithms import ALGORITHMS, DEFAULT_ALGORITHM, REMEASURE_MAX
from engine.search.evaluators import Sequential
from engine.search.indicator import RAW_LABEL, SHARE_LABEL, hv_normalized, hv_text, transform
from engine.search.space import Space

AGAIN_NOTE = "measured again: its 95 % interval overlapped the front's"


@dataclass
class SearchResult:
    evaluated: pd.DataFrame  # runs in the order evaluated (failed ones have NaN objectives)
    front: pd.DataFrame
    hypervolume: list[float]  # normalized hypervolume after each evaluation
    order: list[int]  # space indices in evaluation order (one measured again appears twice)
    space: Space
    hv_true: float | None = None  # the true front's hypervolume on the same scale (whole space known)
    notes: list[str] = field(default_factory=list)  # what the search did besides proposing (measured again)
    stopped: bool = False  # ``stop`` said so before the budget was spent (a cancelled search)

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
        return hv_text(self.trace[-1], bool(self.hv_true)) if self.trace else "nothing evaluated"


@dataclass
class _State:
    """What an algorithm reads of the evaluations so far."""
    objectives: list[str]
    maximize: list[bool]
    order: list[int] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    T: list[np.ndarray] = field(default_factory=list)  # transformed objectives; NaN where measured again since


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
    remeasure: int = REMEASURE_MAX,
    stop: Callable[[], bool] | None = None,
) -> SearchResult:
    """Spend at most ``budget`` evaluations of ``space``, chosen by ``algorithm`` (a key of
    ALGORITHMS); a configuration is evaluated once, unless ours measures a tied one again (at most
    ``remeasure`` times, where the evaluator or pool can). ``bounds`` (lo, hi of the transformed
    objectives) fixes the hypervolume scale; without it the whole space's values set it where the
    space holds them, else the evaluated points (recomputed each step). ``on_step(n, row, value)``
    gets the trace's value (SearchResult.trace). ``pool`` evaluates several at once (see
    Sequential, the default, for what it offers). ``stop()``, asked before each evaluation and after
    each one is recorded, ends the search early (a cancel): the result holds what was evaluated,
    with ``stopped`` set where budget was left."""
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
    st = _State(list(objectives), list(maximize))
    seen: list[np.ndarray] = []  # transformed objectives as measured (st.T forgets a replaced one)
    replaced_at: dict[int, int] = {}  # position of a measurement -> position of the one replacing it
    again: list[tuple[int, int]] = []  # (position, space index) of each measurement made again
    hv_hist: list[float] = []

    def live(n: int) -> np.ndarray:
        """The measurements that stood after evaluation n (0-based)."""
        return np.array([seen[k] for k in range(n + 1) if replaced_at.get(k, n + 1) > n])

    def record(i: int, row: dict | None) -> None:
        i = int(i)
        vals = np.full(n_obj, np.nan)
        if row is not None:
            vals = np.array([float(row.get(o)) if row.get(o) is not None else np.nan for o in objectives])
        t = transform(vals[None, :], maximize)[0]
        if i in st.order:  # measured again: a good new measurement replaces the earlier (as the store's latest)
            again.append((len(st.order), i))
            if row is not None:
                row = {**row, "search_note": AGAIN_NOTE}
            if np.isfinite(t).all():
                for k, j in enumerate(st.order):
                    if j == i and k not in replaced_at:
                        replaced_at[k] = len(st.order)
                        st.T[k] = np.full(n_obj, np.nan)
        st.order.append(i)
        st.rows.append(row if row is not None else {**space.config(i), "status": "failed"})
        st.T.append(t)
        seen.append(t)
        T = np.array(st.T)
        if bounds is not None:
            hv = hv_normalized(T, *bounds)
        else:
            ok = T[np.isfinite(T).all(axis=1)]
            hv = hv_normalized(T, ok.min(axis=0), ok.max(axis=0)) if len(ok) else 0.0
        hv_hist.append(hv)
        if on_step:
            on_step(len(st.order), st.rows[-1], hv / hv_true if hv_true else hv)

    stopped = False
    try:
        ALGORITHMS[algorithm](space, _Runner(pool or Sequential(evaluate), record, remeasure, stop), st, budget, seed, n_obj)
    except _Stopped:
        stopped = len(st.order) < budget
    if not st.rows:
        empty = pd.DataFrame(columns=[*space.knobs, *objectives])
        return SearchResult(empty, empty, [], [], space, hv_true, [], stopped)

    if bounds is None and hv_hist:  # one scale for the whole history: the final evaluated bounds
        measured = np.array(seen)
        ok = measured[np.isfinite(measured).all(axis=1)]
        if len(ok):
            hv_hist = [hv_normalized(live(n), ok.min(axis=0), ok.max(axis=0)) for n in range(len(seen))]
    evaluated = pd.DataFrame(st.rows)
    T = np.array(st.T)
    ok = np.isfinite(T).all(axis=1)
    mask = np.zeros(len(T), bool)
    if ok.any():
        mask[ok] = pareto.non_dominated(T[ok], False)
    outcome = {True: "it replaces the first, on the front found",
               False: "it replaces the first, behind the front found",
               None: "that measurement failed, the first one stands"}
    notes = [f"evaluation {k + 1}: " + " ".join(f"{key}={space.config(i)[key]}" for key in space.knobs)
             + f" {AGAIN_NOTE}; {outcome[bool(mask[k]) if ok[k] else None]}" for k, i in again]
    front = evaluated[mask]
    if objectives[0] in front.columns:
        front = front.sort_values(objectives[0], ascending=not maximize[0], kind="stable")
    return SearchResult(evaluated, front.reset_index(drop=True), hv_hist, st.order, space, hv_true, notes, stopped)


class _Stopped(Exception):
    """Raised through the algorithm when ``stop()`` says the search is to end now."""


class _Runner:
    """What an algorithm calls: ``run(i)`` evaluates one configuration and records it; a batch
    method ``submit``s up to ``slots`` and ``collect``s them as they finish. ``submit(i,
    again=True)`` measures an evaluated configuration once more, while ``again_left`` allows."""

    def __init__(self, pool, record: Callable[[int, dict | None], None], again_max: int = 0,
                 stop: Callable[[], bool] | None = None):
        self.pool, self.record, self.stop = pool, record, stop
        self.slots = max(int(getattr(pool, "slots", 1)), 1)
        self.pending: list[int] = []
        self.again_left = again_max if getattr(pool, "can_again", False) else 0
        self.again_done: set[int] = set()

    def __call__(self, i: int) -> None:
        self.submit(i)
        while i in self.pending:
            self.collect()

    def submit(self, i: int, again: bool = False) -> None:
        if self.stop and self.stop():
            raise _Stopped
        if again:
            self.pool.submit(int(i), again=True)
            self.again_left -= 1
            self.again_done.add(int(i))
        else:
            self.pool.submit(int(i))
        self.pending.append(int(i))

    def collect(self) -> None:
        if self.stop and self.stop():
            raise _Stopped
        i, row = self.pool.next()
        self.pending.remove(i)
        self.record(i, row)
        if self.stop and self.stop():  # at once, not after the next proposal (seconds for a peer's)
            raise _Stopped

    def many(self, indices) -> None:
        """Evaluate every one of ``indices``, keeping up to ``slots`` in flight (a method whose
        proposals do not depend on each other's results: a generation, a random draw)."""
        for i in indices:
            while len(self.pending) >= self.slots:
                self.collect()
            self.submit(int(i))
        while self.pending:
            self.collect()
