"""What the Recommend tab shows, as a shareable link: the task and filters, the objectives with
their directions, the weights, the constraints. ``to_params`` / ``from_params`` round-trip it
through the URL query string the way engine.explore.ViewState does for Explore; a link's names
that the store does not hold are dropped with a note, never passed on to SQL."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.recommend import Constraint
from engine.store import Store

FILTERS = ("hardware", "model", "precision")
KNOWN = ("task", *FILTERS, "obj", "w", "con")
_OP = re.compile(r"(<=|>=|<|>)")


@dataclass
class RecommendLink:
    task: str | None = None
    filters: dict[str, list] = field(default_factory=dict)  # hardware / model / precision -> values
    objectives: list[str] = field(default_factory=list)
    maximize: list[bool] = field(default_factory=list)
    weights: list[float] | None = None
    constraints: list[str] = field(default_factory=list)  # as Constraint.parse reads them: accuracy>=best-1%

    def to_params(self) -> dict[str, str]:
        p = {"task": self.task} if self.task else {}
        for name in FILTERS:
            if self.filters.get(name):
                p[name] = ",".join(str(v) for v in self.filters[name])
        if self.objectives:
            p["obj"] = ",".join(f"{o}:{'max' if m else 'min'}" for o, m in zip(self.objectives, self.maximize))
        if self.weights:
            p["w"] = ",".join(f"{w:g}" for w in self.weights)
        if self.constraints:
            p["con"] = ";".join(c.replace(" ", "") for c in self.constraints)
        return p


def from_params(store: Store, params: Mapping[str, str]) -> tuple[RecommendLink | None, list[str]]:
    """The link's state (None when the URL holds none of its params) and notes on what was dropped."""
    params = {k: v for k, v in params.items() if k in KNOWN and v}
    if not params:
        return None, []
    notes: list[str] = []
    link = RecommendLink()
    tasks = [str(t) for t in store.distinct("task")] if store.has_field("task") else []
    if params.get("task") in tasks:
        link.task = params["task"]
    elif "task" in params:
        notes.append(f"The link's task '{params['task']}' is not in the store; ignored.")
    base = {"task": [link.task]} if link.task else None
    for name in FILTERS:
        if name not in params or not store.has_field(name):
            continue
        allowed = {str(v): v for v in store.distinct(name, base)}
        values = []
        for v in params[name].split(","):
            if v.strip() in allowed:
                values.append(allowed[v.strip()])
            else:
                notes.append(f"The link's {name} '{v.strip()}' is not among the task's runs; ignored.")
        if values:
            link.filters[name] = values
    metrics = {f.name: f for f in store.metrics()}
    for spec in params.get("obj", "").split(",") if params.get("obj") else []:
        name, _, d = spec.partition(":")
        if name not in metrics:
            notes.append(f"The link names an unknown objective '{name}'; ignored.")
            continue
        link.objectives.append(name)
        link.maximize.append(d == "max" if d in ("min", "max") else metrics[name].direction == "max")
    if params.get("w"):
        try:
            w = [float(x) for x in params["w"].split(",")]
            if len(w) != len(link.objectives) or not all(0 <= x <= 1 for x in w):
                raise ValueError
            link.weights = w
        except ValueError:
            notes.append(f"The link's weights '{params['w']}' are not one number in [0, 1] per objective; ignored.")
    for text in params.get("con", "").split(";") if params.get("con") else []:
        try:
            c = Constraint.parse(text)
        except ValueError as e:
            notes.append(f"{e} Ignored.")
            continue
        if c.name not in metrics:
            notes.append(f"The link's constraint '{text}' names an unknown metric; ignored.")
            continue
        link.constraints.append(text.strip())
    return link, notes


def split_constraint(text: str) -> tuple[str, str, str]:
    """'itl_p90_ms<=60' -> ('itl_p90_ms', '<=', '60'): the three widgets of a constraint row."""
    name, op, value = _OP.split(text.replace(" ", ""), maxsplit=1)
    return name, op, value
