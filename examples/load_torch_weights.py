"""Load weights trained in PyTorch into the same model written with tracegrad, and get
PyTorch's outputs.

With PyTorch installed, the script trains a small model in PyTorch for a few steps and saves
its ``state_dict`` with ``torch.save``; without it, it uses the checkpoint PyTorch wrote for
the tests (tests/fixtures/torch_checkpoint.pt, with the outputs PyTorch computed). Either
way tracegrad reads the file itself -- PyTorch's zip format, ``weights_only=True`` -- and no
PyTorch code runs on the loading side.

    python examples/load_torch_weights.py
"""
import os
import pathlib
import tempfile

import numpy as np

import tracegrad
from tracegrad import nn

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def tracegrad_model():
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def checkpoint_from_torch(path):
    """Train the PyTorch twin briefly and save its state_dict; returns (input, its output)."""
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, 3)
    for _ in range(5):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    torch.save(model.state_dict(), path)
    with torch.no_grad():
        return x.numpy(), model(x).numpy()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = os.path.join(tmp, "torch_model.pt")
            x, expected = checkpoint_from_torch(path)
            state = tracegrad.load(path)
            source = "a state_dict PyTorch just saved"
        except ImportError:
            ck = tracegrad.load(FIXTURES / "torch_checkpoint.pt")
            ref = np.load(FIXTURES / "torch_checkpoint_expected.npz")
            state, x, expected = ck["model"], ref["x"], ref["y"]
            source = "the checkpoint PyTorch wrote for the tests"
        model = tracegrad_model()
        result = model.load_state_dict(state)  # strict: every key must match
        print(f"loaded {source}: {list(state)} ({result})")
        with tracegrad.no_grad():
            out = model(tracegrad.tensor(x)).numpy()
        diff = float(np.abs(out - expected).max())
        print(f"tracegrad output vs PyTorch's: max abs difference {diff:.2e}")
        assert np.allclose(out, expected, atol=1e-6), diff


if __name__ == "__main__":
    main()
