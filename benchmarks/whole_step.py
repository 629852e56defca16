"""The whole training step compiled (tracegrad.compile over zero_grad + forward + backward +
Adam.step) against ``jax.jit`` of the same step (value_and_grad plus Adam written out, buffers
donated) and PyTorch eager, in one process.

    python benchmarks/whole_step.py            # two models, 200 timed steps each
    python benchmarks/whole_step.py --quick    # 50 timed steps

Models: the digits-sized MLP 64-128-64-10 (batch 64) and 784-512-512-10 (batch 128), ReLU,
cross-entropy with class targets, Adam(lr=1e-3). Each step ends with its loss read back (a
float), so every implementation is timed to completion. Implementations are interleaved in
rounds of 10 steps; the median per-step time over rounds is reported with the ratio to jax.jit.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run from a checkout: this checkout's tracegrad
    sys.path.insert(0, ROOT)

import tracegrad as tg  # noqa: E402
import tracegrad.nn.functional as tF  # noqa: E402

try:
    import torch
except ImportError:  # the comparison with PyTorch is optional
    torch = None


def _data(sizes, batch):
    rs = np.random.RandomState(0)
    x = rs.randn(batch, sizes[0]).astype(np.float32)
    y = rs.randint(0, sizes[-1], batch)
    ws = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        ws += [(rs.randn(b, a) / np.sqrt(a)).astype(np.float32), np.zeros(b, np.float32)]
    return x, y, ws


def _model(lib, sizes, ws):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(lib.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(lib.nn.ReLU())
    m = lib.nn.Sequential(*layers)
    with lib.no_grad():
        for p, w in zip(m.parameters(), ws):
            p.copy_(lib.tensor(w))
    return m


def tracegrad_step(sizes, x, y, ws):
    model = _model(tg, sizes, ws)
    opt = tg.optim.Adam(model.parameters(), lr=1e-3)

    @tg.compile(fullgraph=True)
    def step(x, y):
        opt.zero_grad()
        loss = tF.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()
    xt, yt = tg.tensor(x), tg.tensor(y)
    return lambda: float(step(xt, yt))


def jax_step(sizes, x, y, ws):
    def loss_fn(params, x, y):
        h = x
        for i in range(0, len(params), 2):
            h = h @ params[i].T + params[i + 1]
            if i < len(params) - 2:
                h = jax.nn.relu(h)
        return -jnp.mean(jax.nn.log_softmax(h)[jnp.arange(h.shape[0]), y])

    def step(params, m, v, t, x, y):
        loss, g = jax.value_and_grad(loss_fn)(params, x, y)
        t = t + 1
        b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-8
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        bc1, bc2 = 1 - b1 ** t, jnp.sqrt(1 - b2 ** t)
        params = [p - lr / bc1 * mi / (jnp.sqrt(vi) / bc2 + eps) for p, mi, vi in zip(params, m, v)]
        return loss, params, m, v, t
    jstep = jax.jit(step, donate_argnums=(0, 1, 2))
    state = [[jnp.asarray(w) for w in ws], [jnp.zeros_like(jnp.asarray(w)) for w in ws],
             [jnp.zeros_like(jnp.asarray(w)) for w in ws], jnp.float32(0)]
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def run():
        loss, *state[:] = jstep(*state, xj, yj)
        return float(loss)
    return run


def torch_step(sizes, x, y, ws):
    model = _model(torch, sizes, ws)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.tensor(x), torch.tensor(y)

    def run():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return float(loss.detach())
    return run


def bench(sizes, batch, steps):
    x, y, ws = _data(sizes, batch)
    impls = {"jax.jit": jax_step, "tracegrad": tracegrad_step}
    if torch is not None:
        torch.set_num_threads(1)
        impls["torch eager"] = torch_step
    first, runs = {}, {}
    for name, make in impls.items():
        t0 = time.perf_counter()
        f = make(sizes, x, y, ws)
        f(), f()  # (tracegrad: the optimizer's first step is eager, the second compiles)
        first[name] = time.perf_counter() - t0
        runs[name] = f
    times = {n: [] for n in impls}
    for _ in range(max(1, steps // 10)):
        for name, f in runs.items():
            t0 = time.perf_counter()
            for _ in range(10):
                f()
            times[name].append((time.perf_counter() - t0) / 10)
    med = {n: statistics.median(t) for n, t in times.items()}
    label = "-".join(map(str, sizes)) + f", batch {batch}"
    print(f"\n{label}: per step (median), ratio to jax.jit; first two calls")
    for n in impls:
        print(f"  {n:12s} {med[n] * 1e3:8.3f} ms  {med[n] / med['jax.jit']:5.2f}x   "
              f"first {first[n]:6.2f} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    steps = 50 if args.quick else 200
    bench((64, 128, 64, 10), 64, steps)
    bench((784, 512, 512, 10), 128, steps)


if __name__ == "__main__":
    main()
