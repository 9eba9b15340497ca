"""Pick strategies (engine/picks.py) on hand-made fronts: each answer is checked by eye."""
import numpy as np

from engine import picks

# A convex front with an obvious elbow at (1, 1); the extremes and two shoulders around it.
ELBOW = np.array([[0.0, 10.0], [1.0, 1.0], [10.0, 0.0], [0.5, 6.0], [6.0, 0.5]])


def test_knee_is_the_elbow_whatever_the_directions():
    order, how = picks.rank(ELBOW, [False, False])
    assert how == "knee" and order[0] == 1 and sorted(order) == list(range(5))
    # the same front with the second objective maximized (negated) has the same knee
    order, how = picks.rank(ELBOW * [1, -1], [False, True])
    assert how == "knee" and order[0] == 1


def test_runner_up_after_the_knee_is_the_next_nearest_the_ideal():
    order, _ = picks.rank(ELBOW, [False, False])
    assert list(order[1:3]) in ([3, 4], [4, 3])  # the two shoulders before the extremes


def test_a_straight_front_has_no_knee_and_says_ideal():
    line = np.c_[np.linspace(0, 1, 7), np.linspace(1, 0, 7)]
    order, how = picks.rank(line, [False, False])
    assert how == "ideal" and order[0] == 3  # the middle is nearest the ideal (0, 0)


def test_tiny_fronts_are_ordered_by_the_ideal():
    order, how = picks.rank(np.array([[2.0, 2.0]]), [False, False])
    assert how == "ideal" and list(order) == [0]
    # two points: scaled to the two ends, equally far from the ideal; both are kept, in order
    order, how = picks.rank(np.array([[1.0, 9.0], [2.0, 2.0]]), [False, False])
    assert how == "ideal" and list(order) == [0, 1]


def test_weights_pick_the_end_they_favour_and_order_by_distance():
    order, how = picks.rank(ELBOW, [False, False], weights=[1, 0])
    assert how == "weights" and order[0] == 0  # all weight on the first objective: its best end
    order, _ = picks.rank(ELBOW, [False, False], weights=[0, 1])
    assert order[0] == 2
    order, _ = picks.rank(ELBOW, [False, False], weights=[1, 1])
    assert order[0] == 1  # equal weights on a symmetric front: the middle


def test_weights_with_an_objective_equal_on_every_point():
    F = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    order, how = picks.rank(F, [False, False], weights=[1, 1])
    assert how == "weights" and sorted(order) == [0, 1, 2]


def test_one_objective_is_best_first():
    order, how = picks.rank(np.array([[3.0], [1.0], [2.0]]), [True])
    assert how == "best" and list(order) == [0, 2, 1]
