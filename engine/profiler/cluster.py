"""Sweeps and searches measured on a Ray cluster (`--ray ADDRESS`), the driver the only writer.

Why Ray: it is what ML teams already run for sweeps and tuning, and it does the scheduling: each
configuration becomes one Ray task asking for what it needs (one GPU, or its CPU threads), and Ray
puts it on whichever node has that free. The task runs the same ``Sweep.profile`` as a local sweep
(warm-up, windows, repeats, quality), so a run measured on a node is measured the same way.

Each task is a Ray generator: it first yields where it runs (node id, host, pid, the node's
hardware), then the run row. So the driver knows at every moment what each node is measuring
(the page's progress per node), and when a worker or a node dies mid-configuration it still knows
where. Rows come back to the driver, which writes them to the store one by one in completion
order: no worker ever opens the store file.

Faults: Ray's own task retries are off (``max_retries=0``); the driver itself resubmits a
configuration whose worker or node died, at most ``retries`` times, so every attempt and why it
ended is said in the run's notes. A configuration that still fails is stored as failed with the
reason; the sweep goes on. Cancel and Ctrl-C cancel what is in flight (an interrupt first, so
the task's finally blocks run, e.g. a GPU power limit is put back; then a kill after a grace).

Ray is imported inside the functions here, never at module import: the app starts fast, and
nothing but a ``--ray`` sweep needs it.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field

from engine.counts import counted
from engine.profiler import results

RETRIES = 1  # default resubmissions of a configuration whose worker or node died
CANCEL_GRACE_S = 3.0  # an interrupted task has this long to finish its finally blocks before it is killed
CONNECT_TIMEOUT_S = 5.0


class ClusterError(ValueError):
    """The cluster cannot be used (unreachable, no GPU where one is asked for): one sentence."""


# -- connecting -------------------------------------------------------------------------------
def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--ray takes local, auto or HOST:PORT, not '{address}'.")
    return host.strip("[]"), int(port)


def _reachable(address: str) -> None:
    """Fail in seconds, with one sentence, where nothing listens at the address (ray.init would
    keep retrying for about a minute)."""
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)
        raise ClusterError(f"Cannot reach a Ray cluster at {address} ({why.lower()}); start one with "
                           f"`ray start --head` or check the address.") from None


def check(address: str) -> str:
    """The address, stripped, once it is well formed and something listens there (in seconds,
    without importing Ray: a command checks it before building its workload)."""
    address = (address or "").strip()
    if not address:
        raise ClusterError("--ray needs an address: local, auto or HOST:PORT.")
    if address.startswith("ray://"):  # Ray Client needs the ray[client] extra (grpcio), not installed here
        raise ClusterError(f"--ray {address}: Ray Client addresses (ray://) are not supported; run on a machine of the "
                           f"cluster with --ray auto, or give the head's HOST:PORT (6379 by default).")
    if address not in ("local", "auto"):
        _reachable(address)
    return address


def connect(address: str, num_cpus: int | None = None) -> "Cluster":
    """The cluster at ``address``: ``local`` (a private Ray instance on this machine, shut down
    when the cluster is closed; ``num_cpus`` caps it), ``auto`` (the one started here with ``ray
    start``, or RAY_ADDRESS) or ``HOST:PORT`` (a head's GCS port). A Ray already connected in
    this process (e.g. by a test) is used as it is and left running."""
    address = check(address)
    import ray

    if ray.is_initialized():
        here = ray.get_runtime_context().gcs_address
        if address not in ("local", "auto") and _host_port(here) != _host_port(address):
            raise ClusterError(f"This process is already connected to the Ray cluster at {here}, not {address}.")
        return Cluster(address, owned=False)
    kwargs = dict(include_dashboard=False, num_cpus=num_cpus) if address == "local" else {}
    with _stderr_kept(address not in ("local", "auto")) as said:
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, **kwargs)
        except ConnectionError as e:
            if address == "auto":
                raise ClusterError("No running Ray cluster found for --ray auto: start one here with `ray start "
                                   "--head`, or name it with RAY_ADDRESS or --ray HOST:PORT.") from None
            if "InvalidAuthToken" in said() or "Unauthenticated" in said():
                raise ClusterError(f"The Ray cluster at {address} asks for its authentication token: set "
                                   f"RAY_AUTH_MODE=token, with the token in ~/.ray/auth_token or "
                                   f"RAY_AUTH_TOKEN.") from None
            raise ClusterError(f"Could not connect to the Ray cluster at {address}: {_first_line(e)}") from None
        except Exception as e:  # version mismatch, a Ray that would not start
            raise ClusterError(f"Could not use the Ray cluster at {address}: {_first_line(e)}") from None
    return Cluster(address, owned=True)


@contextlib.contextmanager
def _stderr_kept(on: bool):
    """Hold back what Ray's C++ side prints to stderr while it connects (a line a second while it
    retries, for about 20 s); yields a function returning that text, so the failure can be said
    in one sentence instead."""
    if not on:
        yield lambda: ""
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(tmp.fileno(), 2)
        try:
            yield lambda: (sys.stderr.flush(), tmp.seek(0), tmp.read().decode(errors="replace"))[2]
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


class Cluster:
    """A connected Ray cluster: its nodes, what a configuration asks of it, and its tasks."""

    def __init__(self, address: str, owned: bool):
        self.address, self.owned = address, owned

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.owned:
            import ray

            ray.shutdown()
            self.owned = False

    def nodes(self) -> list[dict]:
        """Alive nodes: host, node id, CPUs, GPUs and the accelerator type Ray detected."""
        import ray

        out = []
        for n in ray.nodes():
            if not n.get("Alive"):
                continue
            res = n.get("Resources", {})
            accel = [k.split(":", 1)[1] for k in res if k.startswith("accelerator_type:")]
            out.append({"node_id": n["NodeID"], "host": n.get("NodeManagerHostname") or n.get("NodeManagerAddress"),
                        "ip": n.get("NodeManagerAddress"), "cpus": res.get("CPU", 0), "gpus": res.get("GPU", 0),
                        "accelerator": accel[0] if accel else None})
        return out

    def describe(self) -> str:
        nodes = self.nodes()
        cpus, gpus = sum(n["cpus"] for n in nodes), sum(n["gpus"] for n in nodes)
        if self.address == "local":
            where = "a private local Ray instance" if self.owned else "the local Ray instance of this process"
        else:
            import ray

            where = f"the Ray cluster at {ray.get_runtime_context().gcs_address}"
        return f"{where}: {counted(len(nodes), 'node')}, {cpus:g} CPUs, {gpus:g} GPUs"

    def device(self, asked: str) -> str:
        """The device the tasks measure on: a GPU where one is asked for (or ``auto`` and the
        cluster has GPUs), else the CPU. On a node, Ray's CUDA_VISIBLE_DEVICES makes the GPU it
        gives the task cuda:0."""
        gpus = sum(n["gpus"] for n in self.nodes())
        if asked == "cpu":
            return "cpu"
        if asked == "auto":
            return "cuda:0" if gpus else "cpu"
        if asked.startswith("cuda"):
            if not gpus:
                raise ClusterError(f"--device {asked} was asked for, but the Ray cluster has no GPU.")
            return "cuda:0"
        raise ClusterError(f"--device must be auto, cpu or cuda[:N], not '{asked}'.")

    @staticmethod
    def resources(cfg: dict, device: str) -> dict:
        """What one configuration asks of a node: one GPU (and its CPU threads), or its CPU threads."""
        cpus = int(cfg.get("threads") or 1)
        return {"num_cpus": cpus, "num_gpus": 1 if device.startswith("cuda") else 0}

    def fits(self, res: dict) -> str | None:
        """Why no node can ever run a task asking ``res`` (None where one can)."""
        nodes = self.nodes()
        if any(n["cpus"] >= res["num_cpus"] and n["gpus"] >= res["num_gpus"] for n in nodes):
            return None
        most = max((n["cpus"] for n in nodes), default=0)
        return (f"needs {res['num_cpus']} CPU{'s' if res['num_cpus'] > 1 else ''}"
                + (f" and {res['num_gpus']} GPU" if res["num_gpus"] else "")
                + f" on one node; the largest node of the Ray cluster has {most:g} CPUs")

    def slots(self, res: dict) -> int:
        """How many tasks asking ``res`` the cluster runs at once (at least one)."""
        n = 0
        for node in self.nodes():
            k = node["cpus"] // res["num_cpus"] if res["num_cpus"] else float("inf")
            if res["num_gpus"]:
                k = min(k, node["gpus"] // res["num_gpus"])
            n += int(k)
        return max(n, 1)


# -- on a node ----------------------------------------------------------------------------------
_NODE: dict = {}  # this worker's hardware and the sweep it measures for (one at a time)


def measure_on_node(spec: dict, options, sweep_id: str, i: int, cfg: dict):
    """A Ray task's body: say where it runs, then measure one configuration as a local sweep
    does (the worker keeps the sweep, so the workload is built once per worker, not per task)."""
    import ray

    from engine.profiler import hardware
    from engine.profiler.sweep import Sweep
    from engine.profiler.workloads import get_workload

    if "hw" not in _NODE:
        _NODE["hw"] = hardware.detect()
    hw = _NODE["hw"]
    name = hw.cpu_model
    if options.device.startswith("cuda") and hw.gpus:
        ids = ray.get_gpu_ids()
        gpu = int(ids[0]) if ids and str(ids[0]).isdigit() and int(ids[0]) < len(hw.gpus) else 0
        name = hw.gpus[gpu].name
    yield {"node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
           "ip": ray.util.get_node_ip_address(), "pid": os.getpid(), "hardware": name}
    key = (sweep_id, json.dumps(spec, sort_keys=True, default=str))
    if _NODE.get("key") != key:
        _NODE.pop("sweep", None)
        workload = get_workload(spec.get("name"), spec.get("model"), spec.get("params"))
        _NODE["sweep"], _NODE["key"] = Sweep(workload, [], db=False, options=options, sweep_id=sweep_id,
                                             log=lambda _m: None), key
    row = _NODE["sweep"].profile(i, cfg)
    row["hardware"] = name  # the GPU Ray gave this task, not the node's first one
    yield row


_REMOTE: dict = {}


def _remote():
    """The Ray remote function, made once per process (ray.remote needs ray imported)."""
    if "fn" not in _REMOTE:
        import ray

        _REMOTE["fn"] = ray.remote(max_retries=0)(measure_on_node)
    return _REMOTE["fn"]


# -- on the driver ------------------------------------------------------------------------------
@dataclass
class _Flight:
    key: object  # the caller's name for this configuration (sweep: its index; search: space index)
    i: int
    cfg: dict
    res: dict
    attempt: int = 1
    start: dict | None = None  # where it runs, once the task said so
    notes: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)


_LOST = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "LocalRayletDiedError", "ObjectLostError",
         "OwnerDiedError", "ObjectReconstructionFailedError", "RaySystemError", "ObjectFetchTimedOutError")


def _lost(e: BaseException) -> bool:
    """Did the worker or node die (worth another attempt), rather than the task's own code fail?"""
    return any(c.__name__ in _LOST for c in type(e).__mro__)


class Tasks:
    """Configurations in flight on the cluster. ``submit`` starts one; ``wait`` returns the rows
    that came back (measured, skipped, or failed with the reason), in completion order."""

    def __init__(self, cluster: Cluster, sweep, spec: dict, retries: int = RETRIES):
        self.cluster, self.sweep, self.spec, self.retries = cluster, sweep, spec, max(int(retries), 0)
        self.flight: dict = {}  # generator -> _Flight
        self.ready: list[tuple[object, dict]] = []
        self.per_node: dict[str, dict] = {}  # host -> hardware, done, failed

    def __len__(self) -> int:
        return len(self.flight) + len(self.ready)

    def submit(self, key, i: int, cfg: dict) -> None:
        res = self.cluster.resources(cfg, self.sweep.device)
        why = self.cluster.fits(res)
        if why:  # Ray would queue it forever
            self.ready.append((key, self._row(_Flight(key, i, cfg, res), "skipped", f"no node can run it: {why}")))
            return
        self._launch(_Flight(key, i, cfg, res))

    def _launch(self, f: _Flight) -> None:
        import dataclasses

        opt = dataclasses.replace(self.sweep.opt, device=self.sweep.device)
        label = " ".join(f"{k}={v}" for k, v in f.cfg.items() if v is not None)
        gen = _remote().options(name=f"paretoscope {self.sweep.workload.name} {label}"[:200], **f.res).remote(
            self.spec, opt, self.sweep.sweep_id, f.i, f.cfg)
        f.start, f.t0 = None, time.monotonic()
        self.flight[gen] = f

    def wait(self, timeout: float) -> list[tuple[object, dict]]:
        """Rows finished within ``timeout`` seconds (at once where some already are)."""
        import ray

        if self.flight and not self.ready:
            ray.wait(list(self.flight), num_returns=1, timeout=timeout)
        if self.flight:
            ready, _ = ray.wait(list(self.flight), num_returns=len(self.flight), timeout=0)
            for gen in ready:
                self._advance(gen)
        out, self.ready = self.ready, []
        return out

    def _advance(self, gen) -> None:
        import ray

        f = self.flight[gen]
        try:
            item = ray.get(next(gen))
        except StopIteration:  # ended without a row (should not happen): say so
            del self.flight[gen]
            self._finish(f, self._row(f, "failed", "the Ray task ended without a result"))
            return
        except Exception as e:
            del self.flight[gen]
            self._fault(f, e)
            return
        if f.start is None:
            f.start = item
            self._node(item)
            if ray.wait([gen], timeout=0)[0]:  # its row is there too
                self._advance(gen)
            return
        del self.flight[gen]  # the row: the task has nothing more to say
        self._finish(f, self._annotate(f, item))

    def _fault(self, f: _Flight, e: BaseException) -> None:
        where = self._where(f)
        if type(e).__name__ == "TaskCancelledError":
            return
        if not _lost(e):  # the task's own code raised (e.g. the workload cannot be built on that node)
            cause = getattr(e, "cause", None) or e
            self._finish(f, self._row(f, "failed", f"failed on {where}: {_first_line(cause)}"))
            return
        f.notes.append(f"Ray: attempt {f.attempt} of {1 + self.retries} ended when the worker died on {where} "
                       f"({type(e).__name__}: {_first_line(e)})")
        if f.attempt <= self.retries:
            f.attempt += 1
            self._launch(f)
            return
        tries = counted(f.attempt, "attempt")
        reason = (f"the worker died mid-configuration on {where} ({type(e).__name__}), on each of {tries} "
                  f"(retries allowed: {self.retries}): {_first_line(e)}")
        if type(e).__name__ == "OutOfMemoryError":
            reason = "out of memory: " + reason
        self._finish(f, self._row(f, "failed", reason))

    @staticmethod
    def _where(f: _Flight) -> str:
        s = f.start
        return f"node {s['host']} (pid {s['pid']})" if s else "a node it had not yet reported (it died before starting)"

    def _node(self, start: dict) -> dict:
        return self.per_node.setdefault(start["host"], {"node": start["host"], "node_id": start["node_id"],
                                                         "hardware": start.get("hardware"), "done": 0, "failed": 0})

    def _finish(self, f: _Flight, row: dict) -> None:
        if f.start:
            n = self._node(f.start)
            n["done" if row["status"] == "ok" else "failed"] += 1
        self.ready.append((f.key, row))

    def _ray_env(self, f: _Flight) -> dict:
        return {**(f.start or {}), "address": self.cluster.address, "attempt": f.attempt,
                "attempts_allowed": 1 + self.retries, "resources": f.res,
                "seconds_since_submitted": time.monotonic() - f.t0}

    def _annotate(self, f: _Flight, row: dict) -> dict:
        """The node's row with where it ran and how many attempts it took, in its environment."""
        env = json.loads(row.get("environment") or "{}")
        env["ray"] = self._ray_env(f)
        if f.notes:
            f.notes.append(f"Ray: measured on attempt {f.attempt} of {1 + self.retries}")
        env["notes"] = list(env.get("notes", [])) + f.notes
        row["environment"] = json.dumps(env, sort_keys=True, default=str)
        row["node"] = f.start["host"] if f.start else None
        return row

    def _row(self, f: _Flight, status: str, reason: str) -> dict:
        """A row the driver writes for a configuration that never returned one."""
        sw = self.sweep
        env = {"sweep_id": sw.sweep_id, "device": sw.device, "settings": dict(f.cfg), "ray": self._ray_env(f),
               "workload": {"name": sw.workload.name, "model": sw.workload.model_name}, "notes": list(f.notes)}
        row = results.row(run_id=f"{sw.sweep_id}-{f.i:03d}", workload=sw.workload, cfg=f.cfg,
                          hw_name=(f.start or {}).get("hardware"), device=sw.device, status=status, reason=reason,
                          wall_s=time.monotonic() - f.t0, env=env)
        row["node"] = f.start["host"] if f.start else None
        return row

    def nodes(self) -> list[dict]:
        """Per node: what it measures now, and how many configurations it finished or failed."""
        running: dict[str, list[dict]] = {}
        for f in self.flight.values():
            if f.start:
                running.setdefault(f.start["host"], []).append({
                    "config": " ".join(f"{k}={v}" for k, v in f.cfg.items() if v is not None),
                    "pid": f.start["pid"], "attempt": f.attempt})
        out = [{**n, "running": running.get(host, [])} for host, n in self.per_node.items()]
        queued = sum(1 for f in self.flight.values() if not f.start)
        return out + ([{"node": "(queued)", "running": [], "done": 0, "failed": 0, "queued": queued}] if queued else [])

    def cancel(self) -> None:
        """Cancel everything in flight: an interrupt first (the task's finally blocks run, e.g. a
        GPU power limit is put back), then, after CANCEL_GRACE_S, a kill of what still runs.
        Nothing more is written."""
        import ray

        gens = list(self.flight)
        self.flight.clear()
        for g in gens:
            ray.cancel(g, force=False)
        left, deadline = gens, time.monotonic() + CANCEL_GRACE_S
        while left and time.monotonic() < deadline:
            ready, left = ray.wait(left, num_returns=len(left), timeout=0.2)
            left += [g for g in ready if not _drained(g)]
        for g in left:
            try:
                ray.cancel(g, force=True)
            except Exception:  # it ended meanwhile
                pass


def _drained(gen) -> bool:
    """Take a ready generator's next item; True once the task is over (its row, its end, an error)."""
    import ray

    try:
        item = ray.get(next(gen))
    except Exception:  # StopIteration, TaskCancelledError, a dead worker: over
        return True
    return "status" in item  # its row (the task ends right after); else where it runs: still going


class SearchPool:
    """A search's evaluations as Ray tasks (search.search's ``pool``): ``slots`` is how many the
    cluster runs at once, so the search proposes that many; the driver stores each row as it lands,
    all of them one import batch. Every proposal is measured (a stored run from another machine
    would not say what this cluster does)."""

    def __init__(self, cluster: Cluster, space, db, retries: int = RETRIES, options=None, log=lambda _m: None):
        from engine.profiler.sweep import Options, Sweep
        from engine.profiler.workloads import get_workload

        self.space = space
        configs = [space.config(i) for i in range(len(space))]
        opt = options or Options(repeats=3, min_time_s=0.2, warmup=1)
        self.sweep = Sweep(get_workload(space.name), configs, db=db, options=opt, cluster=cluster,
                           spec={"name": space.name}, log=log)
        self.tasks = Tasks(cluster, self.sweep, self.sweep.spec, retries)
        needs = {tuple(sorted(cluster.resources(c, self.sweep.device).items())) for c in configs}
        self.slots = max(cluster.slots(dict(n)) for n in needs)  # Ray queues what does not fit yet
        self.done: list[tuple[int, dict]] = []
        self.most_in_flight = 0  # how busy the search kept the cluster

    def submit(self, i: int) -> None:
        self.tasks.submit(i, i, self.space.config(i))
        self.most_in_flight = max(self.most_in_flight, len(self.tasks.flight))

    def next(self) -> tuple[int, dict | None]:
        from engine.search import evaluation

        while not self.done:
            for i, row in self.tasks.wait(0.5):
                self.sweep.keep(row)
                self.done.append((i, row))
        i, row = self.done.pop(0)
        return i, evaluation(self.space.config(i), row)

    def close(self) -> None:
        """Cancel what is still in flight (Ctrl-C, an error, a page that stops)."""
        self.tasks.cancel()
