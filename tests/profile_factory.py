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
