"""User-model factories for the profiler tests (`--model tests.profile_factory:NAME`)."""
import torch
import torch.nn as nn


def factory():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    x = torch.randn(8, 16)

    def evaluate(m):  # agreement with the float32 labels on the example inputs
        want = model(x).argmax(-1)
        return (m(x).argmax(-1) == want).float().mean().item()

    return model, x, evaluate


class Picky(nn.Module):
    """Raises for batches larger than 2: a configuration that fails at run time."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x):
        if x.shape[0] > 2:
            raise RuntimeError(f"batch {x.shape[0]} is too large for this model")
        return self.lin(x)


def picky():
    return {"model": Picky(), "inputs": torch.randn(2, 4), "work_unit": "request"}


def broken():
    raise ValueError("this factory cannot build its model")


def _in_ray_task() -> bool:
    """True inside a Ray task (a worker process), never in the test's own process."""
    try:
        import ray

        return ray.is_initialized() and ray.get_runtime_context().get_task_id() is not None
    except Exception:
        return False


class Fragile(nn.Module):
    """In a Ray task, a batch of 2 ends the worker process as the OOM killer would (os._exit);
    batches of 3 or more take 0.3 s each, long enough for a test to kill that worker from outside."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x):
        if x.shape[0] == 2 and _in_ray_task():
            import os

            os._exit(1)
        if x.shape[0] >= 3:
            import time

            time.sleep(0.3)
        return self.lin(x)


def fragile():
    return {"model": Fragile(), "inputs": torch.randn(1, 4), "work_unit": "request"}
