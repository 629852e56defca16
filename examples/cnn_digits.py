"""A LeNet-style CNN on scikit-learn's 8x8 digits, eagerly and compiled.

Written as PyTorch code with one changed import line (``import tracegrad as torch``): Conv2d,
BatchNorm2d, MaxPool2d, Dropout, Linear and cross_entropy, trained with Adam. Prints the loss
and the time per step for the eager run and for the same step under ``torch.compile``, and the
test accuracy of each. Skips (exit 0) where scikit-learn is not installed.
"""
import sys
import time

import numpy as np

import tracegrad as torch
from tracegrad import nn
import tracegrad.nn.functional as F

try:
    from sklearn.datasets import load_digits
except ImportError:
    print("scikit-learn is not installed: skipping the digits example")
    sys.exit(0)


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)     # 8x8 -> 8x8
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)    # 4x4 -> 4x4
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.1)
        self.fc1 = nn.Linear(16 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))  # -> 8 x 4 x 4
        x = self.pool(F.relu(self.conv2(x)))             # -> 16 x 2 x 2
        x = self.drop(torch.flatten(x, 1))
        return self.fc2(F.relu(self.fc1(x)))


def data():
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    n = 1500
    return (torch.tensor(x[:n]), torch.tensor(y[:n])), (torch.tensor(x[n:]), torch.tensor(y[n:]))


def train(compiled, steps=60, batch=100):
    torch.manual_seed(0)
    (xtr, ytr), (xte, yte) = data()
    model = LeNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss_of(xb, yb):
        return F.cross_entropy(model(xb), yb)

    fn = torch.compile(loss_of) if compiled else loss_of
    times = []
    for step in range(steps):
        i = (step * batch) % len(xtr)
        xb, yb = xtr[i:i + batch], ytr[i:i + batch]
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = fn(xb, yb)
        loss.backward()
        opt.step()
        loss_value = loss.item()
        times.append(time.perf_counter() - t0)
        if step % 20 == 0 or step == steps - 1:
            print(f"  step {step:3d}  loss {loss_value:.4f}")
    model.eval()
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    per_step = 1e3 * float(np.median(times[5:]))
    print(f"  {'compiled' if compiled else 'eager'}: {per_step:.2f} ms/step (median), "
          f"test accuracy {acc:.3f}")
    return acc


if __name__ == "__main__":
    print("eager")
    eager_acc = train(False)
    print("compiled")
    compiled_acc = train(True)
    assert eager_acc > 0.8 and compiled_acc > 0.8, (eager_acc, compiled_acc)
