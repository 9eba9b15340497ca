"""The search algorithms people would use instead of ours, as adapters over the same finite space.

Each adapter is ``fn(space, run, st, budget, seed, n_obj)`` (engine/search/algorithms.py): it calls
``run(i)`` (which evaluates configuration ``i`` of the space and appends its transformed
objectives, log-scaled and to be minimised, to ``st.T``) until ``budget`` distinct configurations
are evaluated, never one twice. Each registers itself in engine.search.ALGORITHMS beside ours;
bench/bench_search.py compares all.

- ``botorch``: BoTorch's qLogNEHVI (one at a time) over the candidate set itself: a SingleTaskGP per
  objective on the configurations' encoding (Space.features(), normalised to [0, 1]), fitted by
  marginal likelihood, the acquisition maximised by optimize_acqf_discrete over the unevaluated
  configurations. Hyperparameters are refit on ours' schedule (every step while few points, then
  every 5th, warm-started), with as many Monte Carlo draws as ours.
- ``optuna-gp``: Optuna's GPSampler (multi-objective LogEHVI) on knob-wise parameters
  (categorical knobs as categories, numeric knobs as log-scaled floats), its acquisition
  maximised over the unevaluated configurations (GPSampler's ``_optimize_acqf``, the method it
  names for changing the optimiser; optuna is pinned exactly) instead of the continuous box.
- ``optuna-tpe``: Optuna's multivariate TPESampler on the same parameters; it has no
  candidate-set hook, so each suggestion is snapped to the nearest unevaluated configuration
  (a category differs by 1, a number by its share of the log range).
For both Optuna samplers the trial Optuna suggested is closed as failed and the configuration
actually evaluated is added as a complete trial, so the sampler learns from what was measured.
On a pool (a Ray cluster) every peer keeps as many configurations in flight as there are workers:
BoTorch counts the ones being measured as ``X_pending`` (qLogNEHVI integrates over them); Optuna
has no such input for a trial it did not suggest, so its next suggestion is only kept off them.
- ``nsga2``: pymoo's MixedVariableGA with NSGA-II survival, ask/tell, proposals snapped to the
  space; and ``random``, uniform sampling: the floors.

Every model-based peer starts from as many uniformly drawn configurations as ours
(``n_initial``), and sees the objectives on the scale ours sees (log10, minimised).
"""
from __future__ import annotations

import warnings

import numpy as np

from engine.search.algorithms import EHVI_SAMPLES, REFIT_ALWAYS, REFIT_EVERY, n_initial, register


def _finite(st) -> tuple[np.ndarray, np.ndarray]:
    """(space indices, transformed objectives scaled to [0, 1] by the evaluated range) of the
    evaluations that returned every objective."""
    T = np.array(st.T)
    ok = np.isfinite(T).all(axis=1)
    T = T[ok]
    lo, hi = T.min(axis=0), T.max(axis=0)
    return np.array(st.order)[ok], (T - lo) / np.where(hi - lo > 0, hi - lo, 1.0)


# -- BoTorch -----------------------------------------------------------------------------------
@register("botorch")
def botorch_qlognehvi(space, run, st, budget: int, seed: int, n_obj: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    _no_kernel_compile()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: more threads only spin against each other
    try:
        with threadpool_limits(1):
            _botorch_loop(space, run, st, budget, seed, n_obj)
    finally:
        torch.set_num_threads(threads)


def _no_kernel_compile() -> None:
    """Keep BoTorch on its plain PyTorch qLogNEHVI. BoTorch 0.18 compiles a C++ kernel for it on
    first use (torch.utils.cpp_extension into ~/.cache/torch_extensions): 44-50 s on a 2-core
    machine, and again whenever the virtual environment's path changes (a fresh clone). At our
    sizes the kernel is no faster: 20 evaluations of sourcegraph-fim with three objectives took
    28.5 and 33.8 s with it, 28.8 and 25.4 s without, the same proposals. A prebuilt kernel
    (BoTorch's own ``logei_fused_ext`` module) is still used where one is installed."""
    from botorch.acquisition.multi_objective import logei

    if getattr(logei, "_C", None) is None and not getattr(logei, "_load_attempted", True):
        try:
            import logei_fused_ext  # noqa: F401
        except ImportError:
            logei._load_attempted = True  # BoTorch then takes its pure-PyTorch path


def _botorch_loop(space, run, st, budget: int, seed: int, n_obj: int) -> None:
    import torch
    from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
    from botorch.exceptions import InputDataWarning
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Normalize, Standardize
    from botorch.optim import optimize_acqf_discrete
    from botorch.sampling import SobolQMCNormalSampler
    from gpytorch.mlls import ExactMarginalLogLikelihood

    # Standardize scales each objective, but one the first points all share (std 0) is left at
    # std 0, and BoTorch then warns that the data is not standardized: noise in bench and test output
    warnings.filterwarnings("ignore", r"Data \(outcome observations\) is not standardized", InputDataWarning)
    # gpytorch's linear_operator builds a sparse tensor without saying whether torch should check it,
    # and torch 2.13 warns of that once a process: the same noise
    warnings.filterwarnings("ignore", "Sparse invariant checks are implicitly disabled", UserWarning)
    # ours' schedule: hyperparameters refit every step while few points, then every 5th (warm
    # started), and as many Monte Carlo draws as ours (EHVI_SAMPLES, REFIT_ALWAYS, REFIT_EVERY)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    X = torch.tensor(space.features(), dtype=torch.double)
    run.many(rng.permutation(len(space))[: n_initial(budget)])
    hyper = None
    while len(st.order) < budget:
        if len(run.pending) >= run.slots or len(st.order) + len(run.pending) >= budget:
            run.collect()
            continue
        left = np.setdiff1d(np.arange(len(space)), np.r_[st.order, run.pending].astype(int))
        done, Z = _finite(st)
        if len(done) < 2:
            run.submit(int(rng.choice(left)))
            continue
        Y = torch.tensor(-Z, dtype=torch.double)  # BoTorch maximises
        model = SingleTaskGP(X[done], Y, input_transform=Normalize(X.shape[1], bounds=_bounds(X)),
                             outcome_transform=Standardize(n_obj))
        if hyper is not None:  # warm start from the last fit (the outcome scaling is the new data's)
            model.load_state_dict(hyper, strict=False)
        if hyper is None or len(done) <= REFIT_ALWAYS or len(done) % REFIT_EVERY == 0:
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            hyper = {k: v for k, v in model.state_dict().items() if not k.startswith("outcome_transform")}
        model.eval()
        acq = qLogNoisyExpectedHypervolumeImprovement(  # the ones being measured enter as X_pending
            model, ref_point=torch.full((n_obj,), -1.1, dtype=torch.double), X_baseline=X[done], prune_baseline=True,
            sampler=SobolQMCNormalSampler(torch.Size([EHVI_SAMPLES]), seed=int(rng.integers(2**31))),
            X_pending=X[run.pending] if run.pending else None)
        cand, _ = optimize_acqf_discrete(acq, q=1, choices=X[left])
        hit = np.flatnonzero((X[left] == cand[0]).all(dim=1).numpy())
        run.submit(int(left[hit[0]]))


def _bounds(X):
    import torch

    lo, hi = X.min(dim=0).values, X.max(dim=0).values
    return torch.stack([lo, torch.where(hi > lo, hi, lo + 1)])


# -- Optuna ------------------------------------------------------------------------------------
def _optuna(make_sampler):
    def adapter(space, run, st, budget: int, seed: int, n_obj: int) -> None:
        import optuna
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        dists, coords, spans = {}, {}, {}
        for k in space.knobs:
            v = space.configs[k]
            if space.numeric[k]:
                x = v.astype(float).to_numpy()
                dists[k] = FloatDistribution(x.min(), x.max(), log=True)
                coords[k] = np.log2(x)
                spans[k] = max(coords[k].max() - coords[k].min(), 1e-9)
            else:
                coords[k] = v.astype(str).to_numpy()
                dists[k] = CategoricalDistribution(sorted(set(coords[k])))
        params = [{k: (float(space.configs[k].iloc[i]) if space.numeric[k] else str(coords[k][i])) for k in space.knobs}
                  for i in range(len(space))]
        sampler = make_sampler(seed, n_initial(budget))
        study = optuna.create_study(directions=["minimize"] * n_obj, sampler=sampler)
        tie = np.random.default_rng(seed).random(len(space)) * 1e-6
        told = 0
        while len(st.order) < budget:
            for k in range(told, len(st.order)):  # the sampler learns from what was evaluated, as it finishes
                if np.isfinite(st.T[k]).all():
                    study.add_trial(optuna.trial.create_trial(params=params[st.order[k]], distributions=dists,
                                                              values=list(st.T[k])))
            told = len(st.order)
            if len(run.pending) >= run.slots or len(st.order) + len(run.pending) >= budget:
                run.collect()
                continue
            taken = np.r_[st.order, run.pending].astype(int)
            sampler.candidates = [params[i] for i in np.setdiff1d(np.arange(len(space)), taken)]
            trial = study.ask(dists)
            dist = tie.copy()
            for k in space.knobs:  # knob-wise distance: a category differs by 1, a number by its log share
                p = trial.params[k]
                dist += (coords[k] != p) if not space.numeric[k] else np.abs(coords[k] - np.log2(p)) / spans[k]
            dist[taken] = np.inf  # neither evaluated nor being measured
            study.tell(trial, state=optuna.trial.TrialState.FAIL)  # replaced by the configuration evaluated
            run.submit(int(np.argmin(dist)))
    return adapter


def _gp_sampler(seed: int, n_startup: int):
    import optuna

    class CandidateGPSampler(optuna.samplers.GPSampler):
        """GPSampler whose acquisition is maximised over the candidate set (``self.candidates``,
        the unevaluated configurations' parameters) instead of the continuous box, through the
        method GPSampler names as the place to change its acquisition optimiser."""
        candidates: list[dict] = []

        def _optimize_acqf(self, acqf, best_params):
            X = acqf.search_space.get_normalized_params(self.candidates, self.candidates)
            return X[int(np.argmax(acqf.eval_acqf_no_grad(X)))]

    return CandidateGPSampler(seed=seed, n_startup_trials=n_startup, warn_independent_sampling=False)


def _tpe_sampler(seed: int, n_startup: int):
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup, multivariate=True)


optuna_gp = register("optuna-gp")(_optuna(_gp_sampler))
optuna_tpe = register("optuna-tpe")(_optuna(_tpe_sampler))


# -- the floors --------------------------------------------------------------------------------
@register("nsga2")
def nsga2(space, run, st, budget: int, seed: int, n_obj: int) -> None:
    """Plain pymoo NSGA-II for mixed variables, ask/tell. A proposal is snapped to the configuration
    of the space sharing the most knob values; one already evaluated is answered from the cache
    (no budget used). After a few generations with nothing new, proposals snap to unevaluated ones."""
    from pymoo.algorithms.moo.nsga2 import RankAndCrowding
    from pymoo.core.mixed import MixedVariableGA
    from pymoo.core.problem import Problem

    problem = Problem(vars=space.pymoo_vars(), n_obj=n_obj)
    algo = MixedVariableGA(pop_size=max(4, min(20, budget // 3)), survival=RankAndCrowding())
    algo.setup(problem, seed=seed)
    values = {k: space.configs[k].astype(str).to_numpy() for k in space.knobs}
    noise = np.random.default_rng(seed).random(len(space)) * 1e-3
    cache: dict[int, np.ndarray] = {}
    stale = 0
    while len(st.order) < budget:
        pop = algo.ask()
        picks, new = [], []  # a generation is measured as one batch (in parallel on a pool)
        for ind in pop:
            score = noise + sum((values[k] == str(ind.X[k])).astype(float) for k in space.knobs)
            if stale >= 5:
                score[list(cache) + new] = -np.inf
            idx = int(np.argmax(score))
            if idx not in cache and idx not in new:
                if len(st.order) + len(new) >= budget:
                    idx = None  # over the budget: scored as worst
                else:
                    new.append(idx)
            picks.append(idx)
        run.many(new)
        at = {i: k for k, i in enumerate(st.order)}
        for idx in new:
            cache[idx] = np.where(np.isfinite(st.T[at[idx]]), st.T[at[idx]], 1e9)
        F = np.array([cache[idx] if idx is not None else np.full(n_obj, 1e9) for idx in picks])
        stale = 0 if new else stale + 1
        pop.set("F", F)
        algo.tell(infills=pop)


@register("random")
def uniform_random(space, run, st, budget: int, seed: int, n_obj: int) -> None:
    """Uniform sampling without replacement: what any method must beat (a pool measures as many
    at a time as it has workers)."""
    run.many(np.random.default_rng(seed).permutation(len(space))[:budget])
