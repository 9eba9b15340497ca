"""`python -m engine profile`: measure a grid of configurations of a workload on this machine,
or on a Ray cluster with --ray (engine/profiler/cluster.py)."""
from __future__ import annotations

import contextlib
import sys

from engine.commands import add_db
from engine.counts import counted
from engine.profiler import catalog


def add_parser(sub):
    p = sub.add_parser("profile", help="measure a grid of configurations on this machine into the store")
    p.add_argument("--workload", metavar="NAME", help=f"built-in workload: {catalog.described()}; or hf:MODEL, "
                   "a Hugging Face causal LM (hub id org/name, or a local folder; safetensors weights only)")
    p.add_argument("--model", metavar="PKG.MOD:FACTORY",
                   help="your own model: a factory returning (model, example_inputs[, eval_fn])")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="knob values (repeatable): precision (float32, bfloat16, float16; int8, int4, fp8 for the "
                   "built-in workloads), quant (hf: none, int8-weight, int8-dynamic, int4-weight, fp8), batch_size, "
                   "seq_len (tiny-gpt), prompt_len (hf), gen_len, compile, threads, power_limit_w (GPU watts)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="workload parameter, e.g. tiny-gpt layers=4 width=256 heads=8; repeatable")
    p.add_argument("--repeats", type=int, default=5, help="minimum timed batches per configuration (default 5)")
    p.add_argument("--min-time", type=float, default=1.0, help="minimum measured seconds per configuration (default 1)")
    p.add_argument("--warmup", type=int, default=2, help="untimed batches before measuring (default 2)")
    p.add_argument("--until-ci", type=float, metavar="PCT",
                   help="keep measuring a configuration until the 95%% intervals of its latency, throughput and "
                        "energy are within PCT%% of the value (up to --max-time)")
    p.add_argument("--max-time", type=float, default=120.0,
                   help="most measured seconds per configuration (default 120)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every configuration this many times, interleaved over the sweep, and store the "
                        "median with a 95%% interval over the rounds (holds the machine's drift; default 1)")
    p.add_argument("--device", default="auto", help="auto (a CUDA GPU if there is one), cpu, cuda or cuda:N")
    p.add_argument("--no-sampler", action="store_true", help="do not sample utilization / power in a background thread")
    p.add_argument("--memory-budget", type=float, metavar="MB",
                   help="skip configurations predicted to need more memory (default: 90%% of what is free)")
    p.add_argument("--sweep-id", help="id of this sweep (default: time and a random suffix)")
    p.add_argument("--progress-file", help="JSON file to keep up to date with the sweep's progress")
    p.add_argument("--cancel-file", help="the sweep stops after the current configuration once this file exists")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="measure on a Ray cluster, each configuration a task on whichever node Ray picks: local (a "
                        "private Ray instance on this machine), auto (the cluster `ray start` started here), "
                        "HOST:PORT (a head's GCS port); this process alone writes the store")
    p.add_argument("--ray-retries", type=int, default=1, metavar="N",
                   help="with --ray, run a configuration again at most N times when its worker or node dies (default 1)")
    add_db(p)
    return p


def run(args) -> int:
    from engine.cli import CliError
    from engine.profiler import cluster as ray_cluster
    from engine.profiler import knobs
    from engine.profiler.sweep import Options, Sweep
    from engine.profiler.workloads import get_workload

    if not args.workload and not args.model:
        raise CliError(f"Name a workload (--workload {'|'.join(catalog.NAMES)}|hf:MODEL) or your model (--model pkg.mod:factory).")
    if args.repeats < 1 or args.min_time < 0 or args.warmup < 0 or not 1 <= args.rounds <= 100:
        raise CliError("--repeats must be at least 1, --rounds from 1 to 100, and --min-time and --warmup not negative.")
    if args.until_ci is not None and not 0 < args.until_ci < 100:
        raise CliError(f"--until-ci takes a percentage between 0 and 100, not {args.until_ci:g}.")
    if args.max_time < args.min_time:
        raise CliError("--max-time must be at least --min-time.")
    params = {}
    for spec in args.param:
        key, sep, value = spec.partition("=")
        if not sep:
            raise CliError(f"--param '{spec}' must look like KEY=VALUE.")
        params[key.strip()] = value.strip()
    if args.ray_retries < 0:
        raise CliError("--ray-retries must be 0 or more.")
    if args.ray and args.rounds > 1:
        raise CliError("--rounds measures one machine's drift over a sweep; on a Ray cluster a configuration's rounds "
                       "could land on different nodes, so use --rounds 1 with --ray.")
    if args.ray:
        args.ray = ray_cluster.check(args.ray)  # a bad or unreachable address fails here, in seconds
    workload = get_workload(args.workload, args.model, params)
    grid = knobs.parse_grid(args.grid, workload.knobs, args.workload or workload.name, workload.choices)
    configs = knobs.expand(grid, workload.defaults)
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(ray_cluster.connect(args.ray)) if args.ray else None
        sweep = Sweep(workload, configs, db=args.db, sweep_id=args.sweep_id,
                      options=Options(args.repeats, args.min_time, args.warmup, args.device, not args.no_sampler,
                                      memory_budget_mb=args.memory_budget, until_ci=args.until_ci,
                                      max_time_s=args.max_time, rounds=args.rounds),
                      progress_file=args.progress_file, cancel_file=args.cancel_file,
                      log=lambda msg: print(msg, flush=True), cluster=cluster,
                      spec={"name": args.workload, "model": args.model, "params": params}, retries=args.ray_retries)
        print(f"sweep {sweep.sweep_id}: {workload.name} ({workload.model_name}), {counted(len(configs), 'configuration')} "
              f"on {sweep.where} ({sweep.device})", flush=True)
        for note in sweep.hw.notes if cluster is None else ():
            print(f"  note: {note}", flush=True)
        rows = sweep.run()
    summary(rows, sweep, sys.stdout)
    return 0


def summary(rows, sweep, out) -> None:
    import pandas as pd

    from engine.profiler.sweep import QUALITY

    cols = ["precision", "quant", "batch_size", "seq_len", "prompt_len", "gen_len", "compile", "threads", "power_limit_w",
            "node", "status", "latency_ms", "latency_p90_ms", "ttft_ms", "itl_ms", "throughput", *QUALITY, "peak_memory_mb",
            "predicted_memory_mb", "energy_j"]
    df = pd.DataFrame(rows)
    df = df[[c for c in cols if c in df.columns and df[c].notna().any()]]
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    out.write(f"\n{len(rows)} of {counted(len(sweep.configs), 'configuration')} stored as source '{sweep.source}' "
              f"({', '.join(f'{v} {k}' for k, v in counts.items())})\n")
    if len(df):
        with pd.option_context("display.max_rows", None, "display.width", 200, "display.float_format", "{:.4g}".format):
            out.write(df.to_string(index=False) + "\n")
