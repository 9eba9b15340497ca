"""engine.density: the grid that draws many dominated runs as one layer, and when Explore's view
carries it (more than DENSITY_FROM dominated runs, a 2-D view)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from engine.density import DENSITY_FROM, density
from engine.explore import ViewState, build_view
from engine.store import Store


def test_every_point_lands_in_the_cell_that_holds_it():
    rng = np.random.default_rng(1)
    x, y = rng.random(5000) * 10, rng.normal(size=5000)
    d = density(x, y, bins=(7, 5))
    assert d.counts.shape == (5, 7) and d.n_runs == 5000 and d.left_out == 0
    assert d.x_edges[0] == x.min() and d.x_edges[-1] == x.max()  # the extremes are inside, not cut off
    for i in rng.choice(5000, 50, replace=False):  # each point's cell, found by hand, counts it
        cx = min(int(np.searchsorted(d.x_edges, x[i], side="right")) - 1, 6)
        cy = min(int(np.searchsorted(d.y_edges, y[i], side="right")) - 1, 4)
        inside = (d.x_edges[cx] <= x) & (x <= d.x_edges[cx + 1]) & (d.y_edges[cy] <= y) & (y <= d.y_edges[cy + 1])
        assert d.counts[cy, cx] >= 1 and d.counts[cy, cx] <= inside.sum()


def test_a_log_axis_is_cut_evenly_in_log_and_leaves_out_what_it_cannot_place():
    x = np.array([0.001, 0.01, 0.1, 1.0, 10.0, 0.0, -1.0])
    y = np.ones(len(x))
    d = density(x, y, log_x=True, bins=(4, 3))
    assert np.allclose(d.x_edges, [0.001, 0.01, 0.1, 1.0, 10.0])  # one decade per cell
    assert d.left_out == 2 and d.n_runs == 5
    assert d.counts.sum(axis=0).tolist() == [1, 1, 1, 2]  # the last cell is closed: 1 and 10 both in it
    same = density(np.full(3, 2.0), np.full(3, 5.0), bins=(2, 2))  # every run alike: still counted
    assert same.n_runs == 3 and same.x_edges[0] < 2.0 < same.x_edges[-1]


def test_layers_drawn_together_are_counted_on_one_grid():
    """Recommend's infeasible and feasible layers share their cells: a run counted on another
    layer's grid lands in the same cell it would there, and one outside that grid is left out."""
    rng = np.random.default_rng(2)
    x, y = rng.lognormal(size=2000), rng.lognormal(size=2000)
    whole = density(x, y, log_x=True, log_y=True)
    part = x > np.median(x)
    upper = density(x[part], y[part], log_x=True, log_y=True, like=whole)
    lower = density(x[~part], y[~part], log_x=True, log_y=True, like=whole)
    assert np.array_equal(upper.x_edges, whole.x_edges) and np.array_equal(upper.y_edges, whole.y_edges)
    assert np.array_equal(upper.counts + lower.counts, whole.counts)
    outside = density(np.array([x.max() * 10, 1.0]), np.array([1.0, 1.0]), True, True, like=whole)
    assert outside.n_runs == 1 and outside.left_out == 1


def _store(folder, n_dominated: int) -> Store:
    """A store of one front run and ``n_dominated`` runs it beats on energy, latency and throughput."""
    from engine.ingest import import_files
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    csv = folder / "runs.csv"
    pd.DataFrame({"model": [f"m{i}" for i in range(n_dominated + 1)],
                  "energy_j": np.r_[0.5, 1 + rng.random(n_dominated)],
                  "latency_ms": np.r_[0.5, 1 + rng.random(n_dominated)],
                  "throughput": np.r_[900.0, rng.random(n_dominated)]}).to_csv(csv, index=False)
    store = Store(folder / "runs.duckdb")
    [done] = import_files(store, [csv])
    assert done.result.added == n_dominated + 1, done.message()
    return store


def test_a_view_carries_a_density_past_density_from_dominated_runs_and_not_in_3d(tmp_path):
    with _store(tmp_path / "many", DENSITY_FROM + 1) as s:
        flat = build_view(s, ViewState(x="energy_j", y="latency_ms", log_x=True, filters={}))
        assert len(flat.front) == 1 and flat.n_dominated == DENSITY_FROM + 1
        assert flat.density is not None and flat.density.n_runs == DENSITY_FROM + 1
        assert np.allclose(np.diff(np.log10(flat.density.x_edges)), np.diff(np.log10(flat.density.x_edges))[0])
        assert any("drawn as a shaded density" in w for w in flat.warnings)
        three_d = build_view(s, ViewState(x="energy_j", y="latency_ms", z="throughput", z_mode="3d", filters={}))
        assert three_d.density is None
    with _store(tmp_path / "few", DENSITY_FROM) as s:
        assert build_view(s, ViewState(x="energy_j", y="latency_ms", filters={})).density is None
