"""Recommend a configuration from measured runs: objectives, hard constraints, optional weights.

``recommend(store, objectives, maximize, constraints, filters, weights)`` returns the feasible
Pareto set, one pick with its reason, the runner-up, what each constraint costs (the best value
of the primary objective with that constraint dropped) and per-hardware / per-model bests.

Constraints are ``NAME OP VALUE`` with OP one of <=, >=, <, >, e.g. ``itl_p90_ms<=50``. The value
may be relative to the best filtered run: ``accuracy>=best-1%`` (within 1 % of the best, i.e.
best x 0.99), ``itl_p90_ms<=best+20%``, or ``accuracy>=best-0.02`` (absolute difference).
A budget in $ or J is a constraint on the derived ``cost_usd`` or on ``energy_j``.

The pick: without weights, the knee of the front (pymoo's high trade-off points); with weights,
the front point whose pymoo pseudo-weights are nearest the person's weights. The strategies
live in engine/picks.py.
"""
from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine import pareto, picks
from engine.counts import counted
from engine.explore import HOVER_COLUMNS, check_work_units
from engine.fields import CI_HI, CI_LO, CONFIG_COLUMNS, PER_WORK_UNIT
from engine.quality import Lacking, lacking
from engine.store import Store

OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_CONSTRAINT = re.compile(
    r"^\s*([a-z][a-z0-9_]*)\s*(<=|>=|<|>)\s*(?:(best)\s*(?:([+-])\s*([0-9.eE+-]+)\s*(%?))?|([-+0-9.eE]+))\s*$")


@dataclass(frozen=True)
class Constraint:
    name: str
    op: str
    value: float | None = None  # absolute limit
    relative: tuple[str, float, bool] | None = None  # (sign, amount, percent) against the best run

    @classmethod
    def parse(cls, text: str) -> "Constraint":
        m = _CONSTRAINT.match(str(text))
        if not m:
            raise ValueError(f"Constraint '{text}' must look like NAME<=VALUE, NAME>=VALUE or NAME>=best-1%.")
        name, op, best, sign, amount, pct, value = m.groups()
        try:
            number = float(amount or 0) if best else float(value)
        except ValueError:
            raise ValueError(f"Constraint '{text}': the limit is not a number.") from None
        if not math.isfinite(number):
            raise ValueError(f"Constraint '{text}': the limit is not a finite number.")
        if best:
            return cls(name, op, relative=(sign or "+", number, bool(pct)))
        return cls(name, op, number)

    def __str__(self) -> str:
        if self.relative:
            sign, amount, pct = self.relative
            tail = f"{sign}{amount:g}{'%' if pct else ''}" if amount else ""
            return f"{self.name} {self.op} best{tail}"
        return f"{self.name} {self.op} {self.value:g}"

    def limit(self, values: pd.Series, maximize: bool) -> float:
        """The absolute limit; a relative one is taken against the best of ``values``."""
        if not self.relative:
            return float(self.value)
        best = values.max() if maximize else values.min()
        if pd.isna(best):
            raise ValueError(f"No run has a value for {self.name}, so '{self}' has no best to refer to.")
        sign, amount, pct = self.relative
        delta = abs(best) * amount / 100 if pct else amount
        return float(best + delta if sign == "+" else best - delta)


@dataclass
class ConstraintCost:
    constraint: str
    limit: float
    best_with: float | None  # best primary objective with every constraint
    best_without: float | None  # ... with this one dropped
    change_pct: float  # how much the primary objective would improve without it (>= 0)
    text: str


@dataclass
class Recommendation:
    objectives: list[str]
    maximize: list[bool]
    constraints: list[str]
    limits: dict[str, float]  # constraint text -> absolute limit used
    n_runs: int  # runs that passed the filters and have every objective
    n_feasible: int
    front: pd.DataFrame  # the feasible Pareto set
    pick: dict | None
    runner_up: dict | None
    reason: str
    costs: list[ConstraintCost] = field(default_factory=list)
    binding: list[str] = field(default_factory=list)
    infeasible: str | None = None  # why nothing is feasible
    per_hardware: pd.DataFrame | None = None
    per_model: pd.DataFrame | None = None
    runs: pd.DataFrame | None = None  # every filtered run with a 'feasible' and 'on_front' column
    lacking: list[Lacking] = field(default_factory=list)  # filtered runs left out for want of a value
    indistinct: str | None = None  # when the pick and the runner-up overlap at 95 % in every objective


PER_MILLION_BELOW = 1e-3  # a value per work unit below this is also said per million work units


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:,.0f}"


def _unit(store: Store, name: str) -> str:
    u = store.field(name).unit
    return f" {u}" if u and u not in ("count", "1/s") else ""


def _load(store: Store, objectives: Sequence[str], constraints: Sequence[Constraint], filters) -> pd.DataFrame:
    cols = [c for c in HOVER_COLUMNS if store.has_field(c)]
    for f in store.fields("config"):
        if f.name not in cols:
            cols.append(f.name)
    needed = list(objectives) + [c.name for c in constraints]
    needed += [o + sfx for o in objectives for sfx in (CI_LO, CI_HI) if store.has_field(o + sfx)]
    cols += [c for c in dict.fromkeys(needed) if c not in cols]
    keep = set(store.non_empty_columns(filters)) | set(needed)
    cols = [c for c in cols if c in keep]
    return store.query(cols, filters)


def _feasible_mask(df: pd.DataFrame, constraints: Sequence[Constraint], limits: Mapping[str, float],
                   directions: Mapping[str, bool]) -> dict[str, np.ndarray]:
    masks = {}
    for c in constraints:
        vals = df[c.name].astype(float)
        masks[str(c)] = OPS[c.op](vals, limits[str(c)]).fillna(False).to_numpy(bool)
    return masks


def _best(values: pd.Series, maximize: bool) -> float | None:
    values = values.dropna()
    if values.empty:
        return None
    return float(values.max() if maximize else values.min())


def recommend(
    store: Store,
    objectives: Sequence[str],
    maximize: Sequence[bool],
    constraints: Sequence[str | Constraint] = (),
    filters: Mapping | None = None,
    weights: Sequence[float] | None = None,
    summaries: bool = True,
) -> Recommendation:
    objectives, maximize = list(objectives), [bool(m) for m in maximize]
    if not objectives:
        raise ValueError("Pick at least one objective.")
    if len(maximize) != len(objectives):
        raise ValueError("Give a direction for every objective.")
    if weights is not None:
        weights = [float(w) for w in weights]
        if len(weights) != len(objectives) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("Weights must be one non-negative number per objective, not all zero.")
    cons = [c if isinstance(c, Constraint) else Constraint.parse(c) for c in constraints]
    for name in list(objectives) + [c.name for c in cons]:
        if not store.has_field(name) or store.field(name).role != "metric":
            raise ValueError(f"'{name}' is not a metric in the store; known: {', '.join(f.name for f in store.metrics())}.")
    check_work_units(store, list(objectives) + [c.name for c in cons], filters)

    df = _load(store, objectives, cons, filters)
    df = df[df[objectives].notna().all(axis=1)].reset_index(drop=True)
    directions = {f.name: f.direction == "max" for f in store.metrics()}
    directions.update(dict(zip(objectives, maximize)))
    limits = {str(c): c.limit(df[c.name].astype(float), directions.get(c.name, False)) for c in cons}
    masks = _feasible_mask(df, cons, limits, directions)
    feasible = np.logical_and.reduce(list(masks.values())) if masks else np.ones(len(df), bool)
    unit = {o: _unit(store, o) for o in objectives + [c.name for c in cons]}

    rec = Recommendation(objectives, maximize, [str(c) for c in cons], limits, len(df), int(feasible.sum()),
                         df.iloc[:0], None, None, "")
    df["feasible"] = feasible
    df["on_front"] = False
    rec.runs = df
    rec.lacking = [gap for name in dict.fromkeys(objectives + [c.name for c in cons])
                   if (gap := lacking(store, name, filters)).runs]
    gaps = "".join(" " + gap.sentence() for gap in rec.lacking)
    if len(df) == 0:
        rec.infeasible = rec.reason = (
            "No run matches the filters with a value for every objective." if filters else
            "No run has a value for every objective." if store.count(include_failed=False) else
            "The store holds no measured runs yet.") + gaps
        return rec
    if not feasible.any():
        rec.infeasible = rec.reason = _why_infeasible(df, cons, limits, masks, unit) + gaps
        rec.binding = _binding_when_infeasible(df, cons, masks)
        return rec

    feas = df[feasible]
    F = feas[objectives].to_numpy(float)
    front_mask = pareto.non_dominated(F, maximize)
    front = feas[front_mask]
    order, how = picks.rank(front[objectives].to_numpy(float), maximize, weights)
    front = front.iloc[order].reset_index(drop=True)
    df.loc[feas.index[front_mask], "on_front"] = True
    rec.front = front.drop(columns=["feasible", "on_front"])
    rec.pick = rec.front.iloc[0].to_dict()
    if len(rec.front) > 1:
        rec.runner_up = rec.front.iloc[1].to_dict()
    elif feasible.sum() > 1:  # one-point front: the runner-up is the best of the rest
        rest = feas[~front_mask]
        r_order, _ = picks.rank(rest[objectives].to_numpy(float), maximize, weights) if len(objectives) == 1 else (None, None)
        if r_order is not None:
            rec.runner_up = rest.iloc[r_order[0]].drop(["feasible", "on_front"]).to_dict()
        else:
            sub = rest[pareto.non_dominated(rest[objectives].to_numpy(float), maximize)]
            o2, _ = picks.rank(sub[objectives].to_numpy(float), maximize, weights)
            rec.runner_up = sub.iloc[o2[0]].drop(["feasible", "on_front"]).to_dict()
    rec.costs = _costs(df, objectives[0], maximize[0], cons, masks, limits, unit)
    rec.binding = [c.constraint for c in sorted(rec.costs, key=lambda c: -c.change_pct) if c.change_pct > 0]
    rec.indistinct = _indistinct(rec.pick, rec.runner_up, objectives, unit)
    rec.reason = _reason(rec, how, weights, unit) + (" " + rec.indistinct if rec.indistinct else "") + gaps
    if summaries:
        rec.per_hardware = _per_group(feas, "hardware", objectives, maximize, weights)
        rec.per_model = _per_group(feas, "model", objectives, maximize, weights)
    return rec


def _costs(df, primary, maximize, cons, masks, limits, unit) -> list[ConstraintCost]:
    out = []
    all_ok = np.logical_and.reduce(list(masks.values())) if masks else np.ones(len(df), bool)
    with_all = _best(df.loc[all_ok, primary], maximize)
    for c in cons:
        others = [m for k, m in masks.items() if k != str(c)]
        ok = np.logical_and.reduce(others) if others else np.ones(len(df), bool)
        without = _best(df.loc[ok, primary], maximize)
        change = 0.0
        if with_all is not None and without is not None and with_all != 0:
            change = max(0.0, (without - with_all) / abs(with_all) * (1 if maximize else -1)) * 100
        verb = "rise" if maximize else "drop"
        if change > 0.05:
            text = (f"without the {c} limit, {primary} could {verb} {change:.0f} % "
                    f"({_fmt(with_all)} -> {_fmt(without)}{unit[primary]})")
        else:
            text = f"the {c} limit costs nothing in {primary}"
        out.append(ConstraintCost(str(c), limits[str(c)], with_all, without, change, text))
    return out


def _why_infeasible(df, cons, limits, masks, unit) -> str:
    """Name the constraint that binds and by how much it misses."""
    parts = []
    for c in cons:
        others = [m for k, m in masks.items() if k != str(c)]
        ok = np.logical_and.reduce(others) if others else np.ones(len(df), bool)
        vals = df.loc[ok, c.name].dropna().astype(float)
        if ok.any() and not vals.empty:
            nearest = vals.max() if c.op in (">=", ">") else vals.min()
            lim = limits[str(c)]
            miss = abs(nearest - lim) / abs(lim) * 100 if lim else float("inf")
            word = "highest" if c.op in (">=", ">") else "lowest"
            side = "under" if c.op in (">=", ">") else "over"
            scope = " among runs meeting the other constraints" if others else ""
            parts.append((miss, f"no run meets {c.name} {c.op} {_fmt(lim)}: the {word}{scope} is "
                                f"{_fmt(nearest)}{unit[c.name]} ({miss:.0f} % {side})"))
    if not parts:  # dropping any one constraint still leaves nothing
        for c in cons:
            if not masks[str(c)].any():
                vals = df[c.name].dropna().astype(float)
                if vals.empty:
                    parts.append((0, f"no run has a value for {c.name}"))
                    continue
                nearest = vals.max() if c.op in (">=", ">") else vals.min()
                lim = limits[str(c)]
                miss = abs(nearest - lim) / abs(lim) * 100 if lim else float("inf")
                word = "highest" if c.op in (">=", ">") else "lowest"
                parts.append((miss, f"no run meets {c.name} {c.op} {_fmt(lim)}: the {word} is "
                                    f"{_fmt(nearest)}{unit[c.name]} ({miss:.0f} % {'under' if word == 'highest' else 'over'})"))
        if not parts:
            return "No run meets all the constraints together, and dropping any single one does not help."
    parts.sort(key=lambda p: p[0])
    return "; ".join(p[1] for p in parts) + "."


def _binding_when_infeasible(df, cons, masks) -> list[str]:
    out = []
    for c in cons:
        others = [m for k, m in masks.items() if k != str(c)]
        ok = np.logical_and.reduce(others) if others else np.ones(len(df), bool)
        if ok.any() or not masks[str(c)].any():
            out.append(str(c))
    return out


def _value(run: Mapping, o: str, unit) -> str:
    """'cost_usd 3.91e-08 $ = 0.0391 $ per million tokens': a value per work unit too small to
    read at a glance is also said per million of the run's work units, as serving prices are."""
    v, per = float(run[o]), run.get("work_unit")
    text = f"{o} {_fmt(v)}{unit[o]}"
    if o in PER_WORK_UNIT and o != "throughput" and isinstance(per, str) and 0 < abs(v) < PER_MILLION_BELOW:
        text += f" = {_fmt(v * 1e6)}{unit[o]} per million {per}s"
    return text


def _describe(run: Mapping, objectives: Sequence[str], unit) -> str:
    cfg = [str(run[k]) for k in ("model", "hardware", "precision") if k in run and pd.notna(run[k])]
    for k, label in (("num_gpus", "GPU"), ("batch_size", "batch")):
        if k in run and pd.notna(run[k]):
            cfg.append(f"{label} {int(run[k])}" if label == "batch" else counted(int(run[k]), label))
    vals = ", ".join(_value(run, o, unit) for o in objectives)
    return f"{' / '.join(cfg)} ({vals})"


def _reason(rec: Recommendation, how: str, weights, unit) -> str:
    n_front = len(rec.front)
    head = (f"{rec.n_feasible:,} of {counted(rec.n_runs, 'run')} meet the constraints"
            if rec.constraints else counted(rec.n_runs, "run"))
    head += f"; {n_front} {'is' if n_front == 1 else 'are'} Pareto-optimal."
    pick = _describe(rec.pick, rec.objectives, unit)
    if how == "best":
        o = rec.objectives[0]
        why = f"Pick: {pick}, the best {o}."
        if rec.runner_up:
            r = float(rec.runner_up[o])
            p = float(rec.pick[o])
            gap = abs(r - p) / abs(p) * 100 if p else 0
            why += f" The runner-up is {gap:.0f} % {'lower' if rec.maximize[0] else 'higher'}."
    elif how == "weights":
        w = ", ".join(f"{o} {x / sum(weights):.2f}" for o, x in zip(rec.objectives, weights))
        why = f"Pick: {pick}, the front point whose trade-off is nearest your weights ({w})."
    elif how == "ideal":
        why = f"Pick: {pick}, the front point nearest the ideal (best of every objective)."
        if n_front > 2:
            why += " No point of the front stands out as a knee."
    else:
        why = (f"Pick: {pick}, the knee of the front: moving from it to a neighbouring "
               f"Pareto-optimal run gives up more in one objective than it gains in the other.")
    bind = [c.text for c in rec.costs if c.change_pct > 0.05]
    tail = "; ".join(bind)
    tail = f" {tail[0].upper()}{tail[1:]}." if tail else ""
    return f"{head} {why}{tail}"


def _indistinct(pick: Mapping | None, other: Mapping | None, objectives: Sequence[str], unit) -> str | None:
    """A sentence when the two runs' 95 % intervals overlap in every objective (neither is better
    with confidence in any), naming the measurement that would separate them best: the widest
    interval, relative to its value, of the objective where they overlap most."""
    if not pick or not other:
        return None
    worst = None
    for o in objectives:
        lo = [r.get(o + CI_LO) for r in (pick, other)]
        hi = [r.get(o + CI_HI) for r in (pick, other)]
        v = [r.get(o) for r in (pick, other)]
        if any(x is None or pd.isna(x) for x in lo + hi + v):
            return None  # without both intervals, nothing can be said
        if hi[0] < lo[1] or hi[1] < lo[0]:
            return None  # separated in this objective: distinguishable
        widths = [(h - lo_) / abs(x) if x else float("inf") for h, lo_, x in zip(hi, lo, v)]
        k = int(np.argmax(widths))
        overlap = (min(hi) - max(lo)) / max(max(hi) - min(lo), 1e-300)
        if worst is None or overlap > worst[0]:
            worst = (overlap, o, k, widths[k])
    _, o, k, width = worst
    who = ("the pick", "the runner-up")[k]
    return (f"The pick and the runner-up are not distinguishable at 95 %: their intervals overlap in "
            f"{', '.join(objectives)}. More repeats of {who}'s {o} (interval {100 * width:.0f} % of its value) "
            f"would separate them best.")


def _per_group(feas: pd.DataFrame, col: str, objectives, maximize, weights) -> pd.DataFrame | None:
    """For each value of ``col`` (each GPU, each model), its best feasible run by the same rule."""
    if col not in feas.columns or feas[col].isna().all():
        return None
    rows = []
    for value, g in feas.groupby(col, sort=True):
        F = g[objectives].to_numpy(float)
        sub = g[pareto.non_dominated(F, maximize)]
        order, _ = picks.rank(sub[objectives].to_numpy(float), maximize, weights)
        best = sub.iloc[order[0]].drop(["feasible", "on_front"]).to_dict()
        best["feasible_runs"] = len(g)
        best["front_size"] = len(sub)
        rows.append(best)
    out = pd.DataFrame(rows)
    first = [col, "feasible_runs", "front_size"] + [c for c in CONFIG_COLUMNS if c not in (col, "task")] + list(objectives)
    return out[[c for c in first if c in out.columns] + [c for c in out.columns if c not in first]]
