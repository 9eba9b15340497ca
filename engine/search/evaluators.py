"""Evaluators turn one configuration of a space into a run row, and pools run them.

``lookup`` reads the stored measurement of a task's configuration; ``measure`` runs the profiler
now and stores the result (a configuration already stored is read back). An evaluator that can
measure a configuration once more, whatever the store holds, offers ``again(i)``: the search uses
it to decide a tie between two points whose 95 % intervals overlap (see algorithms.surrogate).
"""
from __future__ import annotations

from collections.abc import Callable

from engine.search.space import Space, _py
from engine.store import Store


class LookupEvaluator:
    """The stored measurement of a configuration of a task space."""
    kind = "lookup"

    def __init__(self, space: Space):
        self.space = space

    def __call__(self, i: int) -> dict | None:
        return {k: _py(v) for k, v in self.space.configs.iloc[i].items()}


class MeasureEvaluator:
    """Measures a configuration now with ``measure(workload, config) -> run row`` (which stores the
    run, as the profiler's sweep does); a configuration already in the store for this workload on
    this hardware is read back instead, so nothing is measured twice, across searches too."""
    kind = "measure"

    def __init__(self, space: Space, db_path, measure: Callable[[str, dict], dict | None],
                 hardware: str | None = None, stored_form: Callable[[dict], dict] = lambda c: c):
        self.space, self.db_path, self.measure = space, db_path, measure
        self.hardware, self.stored_form = hardware, stored_form
        self.measured = 0  # configurations really measured (not found in the store)
        self.remeasured = 0  # configurations measured once more (again())

    def cached(self, config: dict) -> dict | None:
        with Store(self.db_path) as store:
            filters: dict = {"task": [self.space.name]}
            if self.hardware:
                filters["hardware"] = [self.hardware]
            for k, v in self.stored_form(config).items():
                if v is None:
                    continue
                if not store.has_field(k):
                    return None
                filters[k] = [v]
            df = store.query(None, filters, include_failed=True, order_by="imported_at")
        return df.iloc[-1].to_dict() if len(df) else None

    def __call__(self, i: int) -> dict | None:
        config = self.space.config(i)
        hit = self.cached(config)
        if hit is None:
            hit = self.measure(self.space.name, config)
            self.measured += 1
        return evaluation(config, hit)

    def again(self, i: int) -> dict | None:
        """A fresh measurement of configuration ``i``, stored beside the earlier one (the store's
        latest, which cached() reads from then on)."""
        config = self.space.config(i)
        self.remeasured += 1
        return evaluation(config, self.measure(self.space.name, config))


def evaluation(config: dict, row: dict | None) -> dict | None:
    """What the search sees of a measured row: the row where it is ok, else the configuration
    with its status and reason (no objectives)."""
    if row is None or row.get("status", "ok") != "ok":
        return None if row is None else {**config, **{k: row.get(k) for k in ("status", "reason", "run_id", "node")}}
    return row


class Sequential:
    """Evaluations one at a time in this process: the pool ``search`` uses unless given another
    (a pool has ``slots``, ``submit(i)`` and ``next() -> (i, row)``, which waits for one; one
    that can measure a configuration again says so with ``can_again`` and takes
    ``submit(i, again=True)``)."""
    slots = 1

    def __init__(self, evaluate: Callable[[int], dict | None]):
        self.evaluate, self.queue = evaluate, []
        self.can_again = callable(getattr(evaluate, "again", None))

    def submit(self, i: int, again: bool = False) -> None:
        self.queue.append((i, again))

    def next(self) -> tuple[int, dict | None]:
        i, again = self.queue.pop(0)
        return i, (self.evaluate.again if again else self.evaluate)(i)


def profiler_measure(db_path, repeats: int = 3, min_time_s: float = 0.2, device: str = "auto"):
    """The profiler's one-configuration measurement for MeasureEvaluator: a one-configuration
    sweep that writes its run to the store. Returns (measure, hardware name, stored_form)."""
    from engine.profiler.hardware import detect
    from engine.profiler.sweep import Options, Sweep
    from engine.profiler.workloads import get_workload

    hw = detect().name

    def stored_form(cfg: dict) -> dict:  # how the sweep writes a configuration's knobs
        out = dict(cfg)
        if "compile" in out:
            out["compile"] = "on" if out["compile"] else "off"
        return out

    def measure(workload: str, cfg: dict) -> dict | None:
        sweep = Sweep(get_workload(workload), [cfg], db=db_path, log=lambda _m: None,
                      options=Options(repeats=repeats, min_time_s=min_time_s, warmup=1, device=device))
        rows = sweep.run()
        return rows[0] if rows else None

    return measure, hw, stored_form

