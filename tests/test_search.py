"""Search over configuration spaces: lookup on the bundled data, measure with the real profiler."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from engine import pareto
from engine import search as S
from engine.search import algorithms
from engine.search import space as space_mod
from engine.store import Store
from tests.conftest import ROOT


def _true_front_ids(space, objectives, maximize):
    T = S.transform(space.configs[objectives].to_numpy(float), maximize)
    return set(space.configs.loc[pareto.non_dominated(T, False), "run_id"])


@pytest.mark.parametrize("algorithm", ["surrogate", "nsga2", "random"])
def test_lookup_finds_the_true_front_of_a_small_space(seeded_db, algorithm):
    with Store(seeded_db) as store:
        objectives, maximize = S.default_objectives(store, "sourcegraph-fim", with_quality=False)
        space = S.task_space(store, "sourcegraph-fim", objectives)
    assert objectives == ["energy_j", "itl_p90_ms"] and len(space) == 50
    assert {"model", "hardware", "num_gpus", "batch_size"} <= set(space.knobs)
    res = S.search(space, S.LookupEvaluator(space), objectives, maximize, budget=len(space), seed=1, algorithm=algorithm)
    assert len(res.order) == len(set(res.order)) == 50  # each configuration once, whole budget used
    assert set(res.front["run_id"]) == _true_front_ids(space, objectives, maximize)
    assert res.hypervolume == sorted(res.hypervolume)  # never goes down


@pytest.mark.parametrize("algorithm", ["surrogate", "nsga2"])
def test_budget_respected_and_no_repeats(seeded_db, algorithm):
    with Store(seeded_db) as store:
        space = S.task_space(store, "gpqa", ["energy_j", "itl_p90_ms"])
    calls = []
    ev = S.LookupEvaluator(space)
    res = S.search(space, lambda i: calls.append(i) or ev(i), ["energy_j", "itl_p90_ms"], [False, False],
                   budget=15, seed=3, algorithm=algorithm)
    assert len(calls) == len(set(calls)) == 15 == len(res.evaluated) == len(res.hypervolume)


@pytest.mark.parametrize("algorithm", list(S.ALGORITHMS))
def test_every_algorithm_evaluates_distinct_configurations_of_the_space_within_budget(seeded_db, algorithm):
    """Ours and each peer adapter (three objectives): only configurations of the space, none twice,
    exactly the budget, also when some evaluations fail (no objective values to learn from)."""
    with Store(seeded_db) as store:
        objectives, maximize = S.default_objectives(store, "sourcegraph-fim")
        space = S.task_space(store, "sourcegraph-fim", objectives)
    assert len(objectives) == 3 and len(space) == 34
    calls = []
    ev = S.LookupEvaluator(space)

    def flaky(i):  # every third configuration fails to run
        calls.append(i)
        return None if i % 3 == 0 else ev(i)

    res = S.search(space, flaky, objectives, maximize, budget=7, seed=1, algorithm=algorithm)
    assert len(calls) == len(set(calls)) == 7 == len(res.evaluated) == len(res.order)
    assert all(0 <= i < len(space) for i in calls) and res.order == calls
    ok = res.evaluated["status"].ne("failed") if "status" in res.evaluated else np.ones(7, bool)
    assert set(res.evaluated.loc[ok, "run_id"]) <= set(space.configs["run_id"])
    if algorithm == "botorch":  # on BoTorch's plain PyTorch path: no C++ kernel compiled (45 s) on first use
        from botorch.acquisition.multi_objective import logei
        assert logei._load_attempted and logei._C is None


def test_unknown_algorithm_names_the_registered_ones(seeded_db):
    with Store(seeded_db) as store:
        space = S.task_space(store, "sourcegraph-fim", ["energy_j", "itl_p90_ms"])
    with pytest.raises(ValueError, match="optuna-tpe"):
        S.search(space, S.LookupEvaluator(space), ["energy_j", "itl_p90_ms"], [False, False], 3, algorithm="cmaes")
    assert S.DEFAULT_ALGORITHM in S.ALGORITHMS


def test_token_tasks_size_models_by_weights_read_per_token(seeded_db):
    """gpt-oss-20b (4B active, mxfp4) reads fewer bytes per token than Qwen3-30B-A3B (3B active,
    bfloat16): the search starts among its configurations, and the model one-hot weighs less."""
    with Store(seeded_db) as store:
        llm = S.task_space(store, "gpqa", ["energy_j", "itl_p90_ms"])
        image = S.task_space(store, "text-to-image", ["energy_j", "latency_ms"])
    gb = llm.side.assign(model=llm.configs["model"]).groupby("model")["weight_gb"].first()
    assert gb["openai/gpt-oss-20b"] == pytest.approx(4.0 * 4.25 / 8)
    assert gb["Qwen/Qwen3-30B-A3B-Thinking-2507"] == pytest.approx(3.0 * 2)
    assert set(llm.configs.loc[algorithms._smallest_model(llm), "model"]) == {"openai/gpt-oss-20b"}
    first = algorithms._initial(llm.features(), 4, np.random.default_rng(0), algorithms._smallest_model(llm))
    assert set(llm.configs.loc[first, "model"]) == {"openai/gpt-oss-20b"}
    assert llm.model_scale == S.MODEL_ONEHOT_SCALE < 1
    assert "weight_gb" not in image.side.columns and image.model_scale == 1.0  # images: not memory-bound


def test_model_sizes_come_from_the_ids_where_the_store_has_none(seeded_db):
    """Qwen's speed benchmark gives no parameter counts: the ids state them (57B-A14B: 57 total,
    14 active), the search starts among the smallest model; an id stating none, or two, gives none."""
    assert space_mod.size_from_name("Qwen/Qwen2-57B-A14B-Instruct") == (57.0, 14.0)
    assert space_mod.size_from_name("HuggingFaceTB/SmolLM2-135M") == (0.135, 0.135)
    assert space_mod.size_from_name("mistralai/Mixtral-8x7B-v0.1") is None
    assert space_mod.size_from_name("merge-7B-13B") is None
    with Store(seeded_db) as store:
        space = S.task_space(store, "qwen2-quantization", ["throughput", "peak_memory_mb"])
        assert "params_b" not in store.non_empty_columns({"task": ["qwen2-quantization"]})
    assert "params_b" not in space.configs.columns  # the runs shown keep what was measured: none
    sizes = space.side.assign(model=space.configs["model"]).groupby("model")["params_b"].first()
    assert sizes["Qwen/Qwen2-0.5B-Instruct"] == 0.5 and sizes["Qwen/Qwen2-72B-Instruct"] == 72
    assert set(space.configs.loc[algorithms._smallest_model(space), "model"]) == {"Qwen/Qwen2-0.5B-Instruct"}
    assert space_mod.sizes_from_names(pd.Series(["Qwen/Qwen2-7B", "my-model"])) is None  # all or none


def test_without_quality_the_design_also_covers_the_model_with_the_fewest_parameters(seeded_db):
    """video-chat, energy and p90 inter-token latency: the 30B models with 3B active read the
    fewest bytes per token, but the 8B dense model holds the whole front. Without a quality
    objective the design starts among both, so its four runs hold 8B ones (before, among the
    30B-A3B models alone: 71-87 % of the true front's hypervolume after five runs, 8 seeds, mean
    78 %); with one it stays on the smallest by bytes read, for the middle size to follow."""
    with Store(seeded_db) as store:
        space = S.task_space(store, "video-chat", ["energy_j", "itl_p90_ms"])
        quality, q_max = S.default_objectives(store, "image-chat")
        image = S.task_space(store, "image-chat", quality)
    a3b = {"Qwen/Qwen3-VL-30B-A3B-Instruct", "Qwen/Qwen3-Omni-30B-A3B-Instruct"}
    assert set(space.configs.loc[algorithms._smallest_model(space), "model"]) == a3b
    assert set(space.configs.loc[algorithms._smallest_model(space, total_too=True), "model"]) == a3b | {"Qwen/Qwen3-VL-8B-Instruct"}
    names, maximize = ["energy_j", "itl_p90_ms"], [False, False]
    hv_true, bounds = S.true_front_hv(space, names, maximize)
    shares = []
    for seed in range(8):
        seen = []
        res = S.search(space, lambda i: seen.append(i) or S.LookupEvaluator(space)(i), names, maximize, 25,
                       seed=seed, bounds=bounds, stop=lambda: len(seen) >= 5)
        assert "Qwen/Qwen3-VL-8B-Instruct" in set(space.configs["model"].iloc[res.order[:4]]), seed
        shares.append(res.hypervolume[4] / hv_true)
    assert np.mean(shares) >= 0.8, shares
    hv_q, bounds_q = S.true_front_hv(image, quality, q_max)
    seen = []
    res = S.search(image, lambda i: seen.append(i) or S.LookupEvaluator(image)(i), quality, q_max, 14,
                   seed=0, bounds=bounds_q, stop=lambda: len(seen) >= 2)
    assert set(image.configs["model"].iloc[res.order[:2]]) <= a3b  # with quality: the smallest by bytes read


def test_with_a_quality_objective_the_first_proposal_after_the_smallest_model_is_the_middle_size(seeded_db):
    """qwen2-quantization with accuracy: the design measures two runs of Qwen2-0.5B (sizes 0.25 to
    144 GB read per token; the middle, 6 GB, is nearest Qwen2-7B's int8 7 GB). The next run is a
    7B one, not the 72B model on the most GPUs that the expected improvement chose alone after a
    single size (0.26-0.32 of the true front's hypervolume after three runs, now more than half)."""
    with Store(seeded_db) as store:
        objectives, maximize = S.default_objectives(store, "qwen2-quantization")
        space = S.task_space(store, "qwen2-quantization", objectives)
    assert objectives == ["accuracy", "throughput", "peak_memory_mb"] and len(space) == 64
    hv_true, bounds = S.true_front_hv(space, objectives, maximize)
    middle = algorithms._from_middle_size(algorithms._sizes(space))
    assert set(space.configs.loc[middle == middle.min(), "model"]) == {"Qwen/Qwen2-7B-Instruct"}
    for seed in range(4):
        seen = []
        res = S.search(space, lambda i: seen.append(i) or S.LookupEvaluator(space)(i), objectives, maximize, 16,
                       seed=seed, bounds=bounds, stop=lambda: len(seen) >= 3)
        models = list(space.configs["model"].iloc[res.order[:3]])
        assert models[:2] == ["Qwen/Qwen2-0.5B-Instruct"] * 2 and models[2] == "Qwen/Qwen2-7B-Instruct", (seed, models)
        assert res.hypervolume[2] / hv_true >= 0.5, (seed, res.hypervolume[2] / hv_true)
    # the store's registry says which objective is quality; without one a smaller model is better
    # on both objectives: no pull towards the middle
    assert "accuracy" in space.quality and not {"throughput", "peak_memory_mb"} & space.quality


def test_lookup_trace_is_a_share_of_the_true_front_that_reaches_one(seeded_db):
    """Where the whole space is known the engine sets hv_true (the true front's hypervolume on the
    same scale) and the trace is the share of it: 1.0 once every configuration is evaluated."""
    with Store(seeded_db) as store:
        objectives, maximize = S.default_objectives(store, "sourcegraph-fim")
        space = S.task_space(store, "sourcegraph-fim", objectives)
    hv_true, bounds = S.true_front_hv(space, objectives, maximize)
    steps = []
    res = S.search(space, S.LookupEvaluator(space), objectives, maximize, len(space), seed=0, algorithm="random",
                   on_step=lambda n, row, h: steps.append(h))
    assert res.hv_true == pytest.approx(hv_true) and res.trace == res.share == steps
    assert res.share[-1] == pytest.approx(1.0) and max(res.share) <= 1 + 1e-12
    assert res.summary() == "100.0 % of the true front's hypervolume"
    # a workload's grid holds no values: no true front, the raw hypervolume, labelled so
    grid = S.workload_space("digits-mlp", ["precision=float32,bfloat16", "batch_size=8,64"])
    fake = {"float32": 1.0, "bfloat16": 2.0}
    raw = S.search(grid, lambda i: {"latency_ms": fake[grid.config(i)["precision"]] * grid.config(i)["batch_size"],
                                    "throughput": grid.config(i)["batch_size"] / fake[grid.config(i)["precision"]]},
                   S.WORKLOAD_OBJECTIVES[0], S.WORKLOAD_OBJECTIVES[1], 4, seed=0)
    assert raw.hv_true is None and raw.share is None and raw.trace == raw.hypervolume
    assert raw.summary().startswith("hypervolume ") and "(scaled to the runs found)" in raw.summary()


def test_surrogate_beats_random_on_gpqa(seeded_db):
    """The point of the surrogate: at 25 % of the space it is ahead of uniform sampling (3 seeds)."""
    with Store(seeded_db) as store:
        objectives, maximize = S.default_objectives(store, "gpqa", with_quality=False)
        space = S.task_space(store, "gpqa", objectives)
    hv_true, bounds = S.true_front_hv(space, objectives, maximize)
    budget = int(0.25 * len(space))
    got = {a: np.mean([S.search(space, S.LookupEvaluator(space), objectives, maximize, budget, seed=s,
                                algorithm=a, bounds=bounds).hypervolume[-1] / hv_true for s in range(3)])
           for a in ("surrogate", "random")}
    assert got["surrogate"] > got["random"] and got["surrogate"] >= 0.95


def test_ours_measures_the_model_that_leads_in_quality_though_it_costs_more_than_anything_measured(seeded_db):
    """sourcegraph-fim with quality: the 480B model holds the front's quality end but spends ten
    times the energy of the 30B one. Once one of its runs is measured, the reference point of the
    expected improvement lies past the predicted values, not the measured ones, so its other
    batch sizes still earn credit for their quality (on the measured range they earned none, and
    a search could end with one 480B run: 40 % of the front's hypervolume)."""
    with Store(seeded_db) as store:
        objectives, maximize = S.default_objectives(store, "sourcegraph-fim")
        space = S.task_space(store, "sourcegraph-fim", objectives)
    assert objectives[0] == "swe_bench_verified" and len(space) == 34
    hv_true, bounds = S.true_front_hv(space, objectives, maximize)
    for seed in range(5):
        res = S.search(space, S.LookupEvaluator(space), objectives, maximize, 8, seed=seed, bounds=bounds)
        big = space.configs["model"].iloc[res.order].str.contains("480B").sum()
        assert big >= 2 and res.hypervolume[-1] / hv_true >= 0.7, (seed, big, res.hypervolume[-1] / hv_true)


def test_quality_is_the_first_of_three_default_objectives(seeded_db):
    """Where a task has quality figures the search trades quality, energy and latency; the
    configurations without a figure are outside the space (nothing is made up for them)."""
    with Store(seeded_db) as store:
        objectives, maximize = S.default_objectives(store, "gpqa")
        space = S.task_space(store, "gpqa", objectives)
        with_accuracy = set(store.distinct("model", {"task": ["gpqa"], "accuracy": {"min": 0}}))
        assert S.default_objectives(store, "qwen2-quantization")[0][0] == "accuracy"
    assert objectives == ["accuracy", "energy_j", "itl_p90_ms"] and maximize == [True, False, False]
    assert set(space.configs["model"]) == with_accuracy and space.configs["accuracy"].notna().all()
    hv_true, bounds = S.true_front_hv(space, objectives, maximize)
    res = S.search(space, S.LookupEvaluator(space), objectives, maximize, int(0.25 * len(space)), seed=0, bounds=bounds)
    assert res.hypervolume[-1] / hv_true >= 0.9
    assert res.front["accuracy"].nunique() >= 2  # the front trades quality against cost


def test_search_cli_json_and_table(seeded_db):
    cmd = [sys.executable, "-m", "engine", "search", "--task", "lm-arena-chat", "--budget", "12", "--seed", "2", "--db", str(seeded_db)]
    out = subprocess.run(cmd + ["--format", "json"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert all(r["arena_score"] is not None for r in doc["evaluated"])  # the task's quality is an objective
    assert len(doc["evaluated"]) == 12 == len(doc["hypervolume"]) and doc["front"]
    assert len({r["run_id"] for r in doc["evaluated"]}) == 12
    assert "[12/12]" in out.stderr and "% of the true front's hypervolume" in out.stderr  # progress as it goes
    share = doc["hypervolume_share"]
    assert share == pytest.approx([h / doc["hv_true"] for h in doc["hypervolume"]], abs=1e-5) and 0 < share[-1] <= 1
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and "Pareto front found" in out.stdout
    assert f"{doc['summary']}." in out.stdout and f"{100 * share[-1]:.1f} % of the true front's" in out.stdout
    out = subprocess.run(cmd[:4] + ["--task", "nope", "--budget", "3", "--db", str(seeded_db)], cwd=ROOT,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 1 and "No runs of task 'nope'" in out.stderr and "known tasks: " in out.stderr
    empty = seeded_db.parent / "empty.duckdb"
    Store(empty).close()
    out = subprocess.run(cmd[:4] + ["--task", "gpqa", "--budget", "3", "--db", str(empty)], cwd=ROOT,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 1 and out.stderr.strip() == (
        "error: No runs of task 'gpqa' in the store; it holds no runs of any task.")  # not 'known tasks: .'


def test_a_stop_ends_the_search_after_the_evaluation_not_after_the_next_proposal(seeded_db, monkeypatch):
    """A cancel (or the bench's stop after the initial design) takes effect once an evaluation is
    recorded: no proposal is made for an evaluation that will not happen (a peer's costs seconds).
    A stop that comes with the last evaluation of the budget is no early end."""
    proposed = []

    def counting(space, run, st, budget, seed, n_obj):
        for i in range(budget):
            proposed.append(i)
            run(i)

    monkeypatch.setitem(algorithms.ALGORITHMS, "counting", counting)
    with Store(seeded_db) as store:
        space = S.task_space(store, "sourcegraph-fim", ["energy_j", "itl_p90_ms"])
    for k, budget, stopped in ((2, 5, True), (5, 5, False)):
        proposed.clear()
        seen = []
        res = S.search(space, lambda i: seen.append(i) or S.LookupEvaluator(space)(i), ["energy_j", "itl_p90_ms"],
                       [False, False], budget, algorithm="counting", stop=lambda: len(seen) >= k)
        assert proposed == list(range(k)) and res.order == list(range(k)) and res.stopped is stopped


def test_search_cli_progress_and_cancel_files(seeded_db, tmp_path, capsys):
    """--progress-file: one entry per evaluation (the CLI's progress line, the trace value), the
    result at the end; --cancel-file: the search stops before its next evaluation, result kept."""
    from engine.cli import main

    progress, cancel = tmp_path / "progress.json", tmp_path / "cancel"
    args = ["search", "--task", "sourcegraph-fim", "--budget", "5", "--db", str(seeded_db),
            "--progress-file", str(progress), "--cancel-file", str(cancel)]
    assert main(args) == 0
    info = json.loads(progress.read_text())
    assert info["kind"] == "search" and info["state"] == "done" and [r["n"] for r in info["results"]] == [1, 2, 3, 4, 5]
    assert info["results"][-1]["line"] in capsys.readouterr().err
    assert info["result"]["trace"] == pytest.approx([r["trace"] for r in info["results"]], abs=1e-6)  # known bounds
    assert info["result"]["summary"] in info["results"][-1]["line"] and info["result"]["front"]
    cancel.touch()
    assert main(args) == 0
    info = json.loads(progress.read_text())
    assert info["state"] == "cancelled" and info["results"] == [] and info["result"]["summary"] == "nothing evaluated"
    assert main(["search", "--task", "nope", "--budget", "3", "--db", str(seeded_db), "--progress-file", str(progress)]) == 1
    info = json.loads(progress.read_text())
    assert info["state"] == "failed" and "No runs of task 'nope'" in info["error"]


def test_search_cli_three_objectives_on_gpqa(seeded_db):
    """Without --objective, gpqa is searched on accuracy, energy and p90 inter-token latency."""
    cmd = [sys.executable, "-m", "engine", "search", "--task", "gpqa", "--budget", "10", "--db", str(seeded_db),
           "--format", "json"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["objectives"] == ["accuracy", "energy_j", "itl_p90_ms"]
    assert len(doc["evaluated"]) == 10 == len({r["run_id"] for r in doc["evaluated"]}) == len(doc["hypervolume"])
    assert all(r["accuracy"] is not None for r in doc["evaluated"])
    assert doc["front"] and doc["hypervolume"] == sorted(doc["hypervolume"])


def test_bench_cell_scores_noisy_search_on_noise_free_values():
    """The bench's unit of work (not the bench): a noisy run is scored with the stored values."""
    from bench import bench_search as B

    r = B.run_cell(("sourcegraph-fim", 3, 0.15, 0, "random"))
    shares = [r["share"][f] for f in B.FRACTIONS]
    assert shares == sorted(shares) and 0 < shares[0] and shares[-1] <= 1 + 1e-9
    space, names, *_ = B._SPACES[("sourcegraph-fim", 3)]
    ev = B.NoisyLookup(space, names, 0.15, 0)
    noisy = [ev(0)["energy_j"] for _ in range(200)]
    assert np.std(noisy) / np.mean(noisy) == pytest.approx(0.15, abs=0.04)  # re-drawn at each evaluation
    assert np.mean(noisy) == pytest.approx(space.configs["energy_j"].iloc[0], rel=0.05)


def test_bench_verdict_names_the_worst_task_and_the_spread_of_its_gap():
    """The verdict says which task falls furthest behind the best peer, and how far apart the two
    methods' scores there may land by the seeds' luck alone (two standard errors of the gap)."""
    from bench import bench_search as B

    a, b = ("task-a", 2, 0.0), ("task-b", 2, 0.0)
    seeds = {(a, B.OURS): [0.9, 0.9, 0.9], (a, "random"): [0.8, 0.8, 0.8],
             (b, B.OURS): [0.5, 0.6, 0.7], (b, "random"): [0.7, 0.7, 0.7]}
    by = {k: [{f: v for f in B.FRACTIONS} for v in vals] for k, vals in seeds.items()}
    [first, *_] = B._verdict(by, [a, b], [B.OURS, "random"], "2 obj", {})
    # task-b: ours 0.6 against 0.7; the gap's standard error is sqrt(0.01 / 3): +-11.5 points at two
    assert "worst task task-b gap -10.0 points (± 11.5 at two standard errors over 3 seeds): NOT met" in first
    assert B.spread([0.5], [0.7]) == "one seed"
    # where task-b's budget at the first fraction is all initial design, the design table's seeds decide
    design = {("task-b", 2, B.FRACTIONS[0]): {B.OURS: [0.7, 0.8, 0.7, 0.8], "random": [0.7, 0.7, 0.7, 0.7]}}
    first, second, *_ = B._verdict(by, [a, b], [B.OURS, "random"], "2 obj", design)
    assert "worst task task-b gap +5.0 points (± 5.8 at two standard errors over 4 seeds): met" in first
    assert "worst task task-b gap -10.0 points" in second  # the other fractions: the main runs, as before


def test_measure_evaluator_on_digits_mlp(empty_db):
    """The real profiler measures a 4-configuration digits-mlp space; a second search finds every
    configuration in the store and measures nothing again; again() measures one anew, and from then
    on the store's latest run is the one read back. (Whether a search measures a tie again depends
    on the intervals measured, so these searches leave it off; the next test covers it.)"""
    space = S.workload_space("digits-mlp", ["precision=float32,bfloat16", "batch_size=8,64"])
    assert len(space) == 4 and space.knobs == ["precision", "batch_size"]
    measure, hw, stored_form = S.profiler_measure(empty_db, repeats=2, min_time_s=0.02)
    ev = S.MeasureEvaluator(space, empty_db, measure, hw, stored_form)
    objectives, maximize = S.WORKLOAD_OBJECTIVES
    res = S.search(space, ev, objectives, maximize, budget=3, seed=0, remeasure=0)
    assert ev.measured == 3 and len(set(res.order)) == 3
    assert res.evaluated["latency_ms_ci_lo"].notna().all()  # measured runs carry their 95 % intervals
    with Store(empty_db) as store:
        stored = store.query(["task", "precision", "batch_size", "latency_ms"], {"task": ["digits-mlp"]}, include_failed=True)
    assert len(stored) == 3 and stored["latency_ms"].notna().all()
    again = S.MeasureEvaluator(space, empty_db, measure, hw, stored_form)
    res2 = S.search(space, again, objectives, maximize, budget=3, seed=0, remeasure=0)
    assert again.measured == 0 and res2.order == res.order
    fresh = again.again(res.order[0])
    assert again.remeasured == 1 and fresh["run_id"] not in set(res.evaluated["run_id"])
    assert again.cached(space.config(res.order[0]))["run_id"] == fresh["run_id"]


class TiedLookup(S.LookupEvaluator):
    """Stored values with an injected 95 % interval of +-``width`` on each objective, as measured
    runs carry; again() measures (looks up) a configuration once more."""

    def __init__(self, space, objectives, width: float):
        super().__init__(space)
        self.objectives, self.width, self.again_calls = objectives, width, []

    def __call__(self, i):
        row = super().__call__(i)
        for o in self.objectives:
            row[o + "_ci_lo"], row[o + "_ci_hi"] = row[o] * (1 - self.width), row[o] * (1 + self.width)
        return row

    def again(self, i):
        self.again_calls.append(i)
        return self(i)


def test_ours_measures_a_tied_point_again_within_the_budget(seeded_db):
    """Where an evaluated point is behind the front by its values but its 95 % interval overlaps a
    front point's (tied), ours measures it once more instead of proposing a new one: at most
    REMEASURE_MAX times, each an evaluation of the budget, each reported in the notes."""
    with Store(seeded_db) as store:
        objectives, maximize = S.default_objectives(store, "sourcegraph-fim", with_quality=False)
        space = S.task_space(store, "sourcegraph-fim", objectives)
    ev = TiedLookup(space, objectives, 0.1)
    res = S.search(space, ev, objectives, maximize, budget=15, seed=0)
    assert len(res.order) == len(res.evaluated) == len(res.hypervolume) == 15  # re-measures count in the budget
    assert len(ev.again_calls) == len(set(ev.again_calls)) == S.REMEASURE_MAX
    assert sorted(i for i in set(res.order) if res.order.count(i) > 1) == sorted(ev.again_calls)
    for i in ev.again_calls:  # each was tied with the front when it was measured again
        k = res.order.index(i, res.order.index(i) + 1)
        before = res.evaluated.iloc[:k]
        member = pareto.membership(before[objectives].to_numpy(float), maximize,
                                   before[[o + "_ci_lo" for o in objectives]].to_numpy(float),
                                   before[[o + "_ci_hi" for o in objectives]].to_numpy(float))
        assert member[res.order.index(i)] == pareto.TIED
    assert len(res.notes) == res.evaluated["search_note"].notna().sum() == S.REMEASURE_MAX
    assert all("measured again: its 95 % interval overlapped the front's" in n for n in res.notes)
    # off, without intervals, or with a peer: the same search as a plain lookup, nothing measured twice
    plain = S.search(space, S.LookupEvaluator(space), objectives, maximize, budget=15, seed=0).order
    for kwargs, width, algorithm in (({"remeasure": 0}, 0.1, "surrogate"), ({}, 0.0, "surrogate"), ({}, 0.1, "random")):
        quiet = TiedLookup(space, objectives, width)
        got = S.search(space, quiet, objectives, maximize, budget=15, seed=0, algorithm=algorithm, **kwargs)
        assert not quiet.again_calls and not got.notes and len(set(got.order)) == 15
        assert algorithm != "surrogate" or got.order == plain


class OutOfOrderPool:
    """A pool of ``slots`` workers in this process that finishes the newest submission first (a
    cluster returns in completion order, not in order of submission)."""

    def __init__(self, evaluate, slots: int):
        self.evaluate, self.slots, self.queue, self.most_in_flight = evaluate, slots, [], 0

    def submit(self, i: int, again: bool = False) -> None:
        self.queue.append(i)
        self.most_in_flight = max(self.most_in_flight, len(self.queue))

    def next(self):
        i = self.queue.pop()
        return i, self.evaluate(i)


@pytest.mark.parametrize("algorithm", ["random", "nsga2"])
def test_the_floors_keep_a_pool_busy_and_find_what_they_find_alone(seeded_db, algorithm):
    """Random draws and NSGA-II generations go out as batches on a pool (a Ray cluster): as many
    in flight as workers, and the same configurations as one at a time, whatever order they finish in."""
    with Store(seeded_db) as store:
        objectives, maximize = S.default_objectives(store, "gpqa")
        space = S.task_space(store, "gpqa", objectives)
    alone = S.search(space, S.LookupEvaluator(space), objectives, maximize, 12, seed=4, algorithm=algorithm)
    pool = OutOfOrderPool(S.LookupEvaluator(space), slots=3)
    pooled = S.search(space, None, objectives, maximize, 12, seed=4, algorithm=algorithm, pool=pool)
    assert pool.most_in_flight == 3 and len(pooled.order) == len(set(pooled.order)) == 12
    assert pooled.order != alone.order and sorted(pooled.order) == sorted(alone.order)
    assert pooled.hypervolume[-1] == pytest.approx(alone.hypervolume[-1])


@pytest.mark.parametrize("algorithm", ["optuna-gp", "optuna-tpe", "botorch"])
def test_the_model_based_peers_keep_a_pool_busy_with_distinct_proposals(seeded_db, algorithm):
    """Optuna and BoTorch on a pool: as many configurations in flight as workers, each proposal
    kept off the ones being measured (BoTorch counts them as X_pending), the budget spent on
    distinct configurations with the hypervolume reported per evaluation."""
    with Store(seeded_db) as store:
        objectives, maximize = S.default_objectives(store, "sourcegraph-fim")
        space = S.task_space(store, "sourcegraph-fim", objectives)
    pool = OutOfOrderPool(S.LookupEvaluator(space), slots=3)
    pooled = S.search(space, None, objectives, maximize, 6, seed=2, algorithm=algorithm, pool=pool)
    assert pool.most_in_flight == 3 and len(pooled.order) == len(set(pooled.order)) == 6
    assert len(pooled.hypervolume) == 6 and pooled.hypervolume == sorted(pooled.hypervolume)
