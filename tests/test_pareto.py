"""engine.pareto against brute-force references on random data (ties, duplicates, NaN, mixed
min/max), plus hypervolume on cases small enough to check by hand."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import pareto


def brute_non_dominated(pts: np.ndarray, maximize) -> np.ndarray:
    z = np.where(np.asarray(maximize, dtype=bool), -pts, pts)
    finite = ~np.isnan(z).any(axis=1)
    out = np.zeros(len(z), dtype=bool)
    for i in range(len(z)):
        if not finite[i]:
            continue
        out[i] = not any(finite[j] and (z[j] <= z[i]).all() and (z[j] < z[i]).any() for j in range(len(z)))
    return out


def brute_ranks(pts: np.ndarray, maximize) -> np.ndarray:
    finite = ~np.isnan(pts).any(axis=1)
    out = np.zeros(len(pts), dtype=int)
    left = finite.copy()
    rank = 1
    while left.any():
        idx = np.flatnonzero(left)
        front = brute_non_dominated(pts[idx], maximize)
        out[idx[front]] = rank
        left[idx[front]] = False
        rank += 1
    return out


@st.composite
def point_sets(draw, max_n=40):
    """Small integer grids give many ties and duplicates; some cells become NaN."""
    d = draw(st.integers(1, 4))
    n = draw(st.integers(0, max_n))
    vals = draw(st.lists(st.lists(st.integers(0, 5), min_size=d, max_size=d), min_size=n, max_size=n))
    pts = np.array(vals, dtype=float).reshape(n, d)
    nan_cells = draw(st.lists(st.tuples(st.integers(0, max(n - 1, 0)), st.integers(0, d - 1)), max_size=4))
    for i, j in nan_cells:
        if n:
            pts[i, j] = np.nan
    if n > 1 and draw(st.booleans()):
        pts = np.vstack([pts, pts[: n // 2]])  # exact duplicates
    maximize = draw(st.lists(st.booleans(), min_size=d, max_size=d))
    return pts, maximize


@settings(max_examples=300, deadline=None)
@given(point_sets())
def test_non_dominated_matches_brute_force(case):
    pts, maximize = case
    got = pareto.non_dominated(pts, maximize)
    assert got.dtype == bool and got.shape == (len(pts),)
    np.testing.assert_array_equal(got, brute_non_dominated(pts, maximize))


@settings(max_examples=200, deadline=None)
@given(point_sets(max_n=25))
def test_ranks_match_brute_force(case):
    pts, maximize = case
    np.testing.assert_array_equal(pareto.ranks(pts, maximize), brute_ranks(pts, maximize))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000))
def test_continuous_random_data_with_mixed_directions(seed):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(rng.integers(1, 120), 3))
    pts[rng.random(len(pts)) < 0.05, 1] = np.nan
    maximize = [False, True, False]
    np.testing.assert_array_equal(pareto.non_dominated(pts, maximize), brute_non_dominated(pts, maximize))


def test_nan_rows_are_counted_and_never_on_the_front():
    pts = np.array([[1.0, 1.0], [np.nan, 0.0], [0.0, np.nan], [2.0, 2.0]])
    res = pareto.front(pts)
    assert res.n_nan == 2
    assert res.mask.tolist() == [True, False, False, False]
    assert pareto.ranks(pts).tolist() == [1, 0, 0, 2]


def test_duplicates_of_a_front_point_are_all_on_the_front():
    pts = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0]])
    assert pareto.non_dominated(pts).tolist() == [True, True, True, False]



def test_a_large_input_mostly_on_its_front_goes_to_moocore_alone_with_the_same_mask():
    """Every point on the plane x+y+z=1 is on the front, so the pivot prefilter would only cost
    (make bench pareto's worst case): the input goes to moocore as given. The mask is the one the
    prefiltered path gives (the same points maximized), NaN rows included."""
    rng = np.random.default_rng(0)
    pts = rng.dirichlet(np.ones(3), 250_000)
    pts[:2000] += rng.random((2000, 3)) * 0.2  # some dominated
    pts[5, 1] = np.nan
    pts[7] = [np.inf, -np.inf, 0.5]  # its row sum is NaN too, but it holds no NaN
    assert pareto._prefilter_is_idle(pts)
    got = pareto.non_dominated(pts)
    np.testing.assert_array_equal(got, pareto.non_dominated(-pts, maximize=True))  # the prefiltered path
    assert not got[5] and 240_000 < got.sum() < 250_000

def brute_hypervolume_2d(pts: np.ndarray, ref) -> float:
    """Area dominated by ``pts`` (minimization) inside the box up to ``ref``, by summing the
    union of rectangles on the grid of all distinct coordinates."""
    pts = pts[(pts < ref).all(axis=1)]
    if len(pts) == 0:
        return 0.0
    xs = np.unique(np.concatenate([pts[:, 0], [ref[0]]]))
    ys = np.unique(np.concatenate([pts[:, 1], [ref[1]]]))
    area = 0.0
    for i in range(len(xs) - 1):
        for j in range(len(ys) - 1):
            cx, cy = xs[i], ys[j]  # lower-left corner of the grid cell
            if ((pts[:, 0] <= cx) & (pts[:, 1] <= cy)).any():
                area += (xs[i + 1] - xs[i]) * (ys[j + 1] - ys[j])
    return area


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000), st.booleans())
def test_hypervolume_matches_brute_force_2d(seed, flip_y):
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 10, size=(rng.integers(1, 30), 2)).astype(float)
    ref = np.array([8.0, 9.0])
    expected = brute_hypervolume_2d(pts, ref)
    if flip_y:  # the same problem with y maximized: negate y and the reference
        pts[:, 1] *= -1
        ref = ref * [1, -1]
    got = pareto.hypervolume(pts, ref, maximize=[False, flip_y])
    assert got == pytest.approx(expected)


def test_hypervolume_by_hand():
    pts = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert pareto.hypervolume(pts, [4.0, 4.0]) == pytest.approx(3 + 2 + 1)
    assert pareto.hypervolume(np.array([[5.0, 5.0]]), [4.0, 4.0]) == 0.0


# -- noise-aware membership -------------------------------------------------------------------

def brute_membership(pts, lo, hi, maximize) -> list[str]:
    """Literal definition: dominated with confidence = some run's worst case beats this run's best case."""
    z = np.where(np.asarray(maximize, dtype=bool), -pts, pts)
    zl = np.where(np.asarray(maximize, dtype=bool), -hi, lo)  # best case, minimized
    zh = np.where(np.asarray(maximize, dtype=bool), -lo, hi)  # worst case, minimized
    zl, zh = np.fmin(np.where(np.isnan(zl), z, zl), z), np.fmax(np.where(np.isnan(zh), z, zh), z)
    point = brute_non_dominated(pts, maximize)
    out = []
    for i in range(len(z)):
        if np.isnan(z[i]).any():
            out.append("missing")
        elif point[i]:
            out.append("front")
        elif any(not np.isnan(z[j]).any() and (zh[j] <= zl[i]).all() and (zh[j] < zl[i]).any() for j in range(len(z))):
            out.append("dominated")
        else:
            out.append("tied")
    return out


def test_membership_on_hand_built_intervals():
    pts = np.array([[1.0, 1.0], [2.0, 2.0], [1.1, 1.1], [1.0, 1.0], [3.0, 0.5], [5.0, 5.0], [np.nan, 1.0]])
    lo = pts - 0.1
    hi = pts + 0.1
    lo[5], hi[5] = np.nan, np.nan  # no interval: a point
    got = pareto.membership(pts, False, lo, hi).tolist()
    # equal values are both on the front; (1.1, 1.1) overlaps (1, 1): tied; (2, 2) is clear of it: dominated
    assert got == ["front", "dominated", "tied", "front", "front", "dominated", "missing"]
    # one-sided overlap: better in x by a clear margin, overlapping in y -> not confident -> tied
    one = np.array([[1.0, 1.0], [2.0, 1.05]])
    assert pareto.membership(one, False, one - [0.1, 0.1], one + [0.1, 0.1]).tolist() == ["front", "tied"]
    # no intervals at all: exactly the plain filter
    assert pareto.membership(pts, False).tolist() == ["front", "dominated", "dominated", "front", "front", "dominated", "missing"]
    # a maximised objective: the best case is the upper end
    acc = np.array([[0.80, 1.0], [0.79, 1.2]])
    assert pareto.membership(acc, [True, False], acc - [0.02, 0.05], acc + [0.02, 0.05]).tolist() == ["front", "tied"]
    assert pareto.membership(acc, [True, False], acc - [0.001, 0.05], acc + [0.001, 0.05]).tolist() == ["front", "dominated"]


@settings(max_examples=150)
@given(point_sets(max_n=30), st.integers(0, 2**32 - 1))
def test_membership_matches_its_definition_and_keeps_the_point_front(case, seed):
    pts, maximize = case
    rng = np.random.default_rng(seed)
    width = rng.uniform(0, 2, pts.shape) * (rng.random(pts.shape) < 0.8)
    lo, hi = pts - width * rng.random(pts.shape), pts + width * rng.random(pts.shape)
    lo[rng.random(pts.shape) < 0.1] = np.nan  # some intervals missing
    got = pareto.membership(pts, maximize, lo, hi, chunk=7)
    assert got.tolist() == brute_membership(pts, lo, hi, maximize)
    point = pareto.non_dominated(pts, maximize)
    assert np.isin(got[point], ["front"]).all()  # front + tied always contains the point-value front
