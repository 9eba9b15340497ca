"""Multi-objective search over a finite configuration space, measuring only what is worth it.

In the manner of pymoo and Optuna, one module per part:
- space.py: the space (a task's measured configurations, or a profiler workload's grid), its
  encoding for the surrogate, and a task's default objectives;
- evaluators.py: what turns a configuration into a run row (``lookup`` reads the stored
  measurement, ``measure`` runs the profiler now and stores it) and the pool that runs them;
- indicator.py: the hypervolume scale every comparison uses, and the true front's where known;
- gp.py: our surrogate, a small Gaussian process with named hyperparameters;
- algorithms.py: the registry of algorithms by name (ALGORITHMS) and ours, ``surrogate``; the
  peers (BoTorch, Optuna, NSGA-II, random) register from engine/search_peers.py;
- loop.py: ``search()``, which spends the budget and returns a SearchResult.

Every evaluation is cached, so a configuration is never evaluated twice, except a tied one that
ours measures once more to be sure of the front (algorithms.py says when).
"""
from engine import search_peers as _peers  # noqa: F401  (registers the peers in ALGORITHMS)
from engine.search.algorithms import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    EHVI_SAMPLES,
    REFIT_ALWAYS,
    REFIT_EVERY,
    REMEASURE_MAX,
    n_initial,
    register,
)
from engine.search.evaluators import LookupEvaluator, MeasureEvaluator, Sequential, evaluation, profiler_measure
from engine.search.indicator import hv_improvement, hv_normalized, hv_text, transform, true_front_hv
from engine.search.loop import SearchResult, search
from engine.search.space import (
    BITS_PER_WEIGHT,
    MODEL_ONEHOT_SCALE,
    WORKLOAD_GRID,
    WORKLOAD_OBJECTIVES,
    Space,
    default_objectives,
    task_space,
    workload_space,
)

__all__ = [
    "ALGORITHMS", "DEFAULT_ALGORITHM", "EHVI_SAMPLES", "REFIT_ALWAYS", "REFIT_EVERY", "REMEASURE_MAX", "n_initial",
    "register", "LookupEvaluator", "MeasureEvaluator", "Sequential", "evaluation", "profiler_measure",
    "hv_improvement", "hv_normalized", "hv_text", "transform", "true_front_hv", "SearchResult", "search",
    "BITS_PER_WEIGHT", "MODEL_ONEHOT_SCALE", "WORKLOAD_GRID", "WORKLOAD_OBJECTIVES", "Space", "default_objectives",
    "task_space", "workload_space",
]
