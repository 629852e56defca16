"""Eager overhead: tracegrad against PyTorch eager and JAX op-by-op, in one process.

Two kinds of case:

* per-op overhead: forward + backward on 16-element float32 tensors, where the arithmetic is
  free and only the framework's own work (dispatch, graph recording, the backward engine) is
  timed -- e.g. ``(x * y).sum().backward()``;
* an MLP training step: 784-512-512-10, batch 128, ReLU, cross-entropy, SGD, where the matrix
  products dominate.

JAX runs op by op with no ``jit``: each forward op is one dispatch, and the gradient uses
``jax.vjp`` / ``jax.value_and_grad`` eagerly (it traces the function on every call, which is
what un-jitted JAX does). Every timed iteration ends by waiting for its results
(``block_until_ready``), since JAX and tracegrad dispatch asynchronously while PyTorch's CPU
ops are synchronous.

    python benchmarks/eager_overhead.py            # full run (about a minute)
    python benchmarks/eager_overhead.py --quick    # a few seconds, noisier
    python benchmarks/eager_overhead.py --profile  # cProfile of tracegrad's per-op loop
    python benchmarks/eager_overhead.py --clock cpu  # CPU time instead of wall time
    python benchmarks/eager_overhead.py --no-eager-jit  # tracegrad without its eager jit cache

Times are medians over repeats of an inner loop, after a warmup; the ratios are
tracegrad / torch and tracegrad / jax (lower is better for tracegrad).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import tracegrad as tg  # noqa: E402
import tracegrad.nn.functional as TF  # noqa: E402

try:
    import torch
except ImportError:  # the table then shows tracegrad and jax only
    torch = None


CLOCK = time.perf_counter  # --clock cpu: time.process_time (CPU seconds of all threads)


def timeit(fn, inner, repeats, warmup):
    """Median seconds per call of ``fn`` over ``repeats`` loops of ``inner`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = CLOCK()
        for _ in range(inner):
            fn()
        samples.append((CLOCK() - t0) / inner)
    return statistics.median(samples)


# ----------------------------------------------------------------------------- per-op cases
N = 16
UNARY = ("exp", "tanh", "sigmoid", "relu")


def per_op_cases():
    """``{name: {framework: fn}}``; each fn runs one forward (+ backward) and waits for it."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal(N).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    cases = {}

    # tracegrad
    x = tg.tensor(a, requires_grad=True)
    y = tg.tensor(b, requires_grad=True)
    xc, yc = tg.tensor(a), tg.tensor(b)

    def tg_fwd_nograd():
        jax.block_until_ready((xc * yc)._data.value)

    def tg_fwd_grad():
        jax.block_until_ready((x * y)._data.value)

    def tg_mul_sum_bwd():
        x.grad = y.grad = None
        (x * y).sum().backward()
        jax.block_until_ready((x.grad._data.value, y.grad._data.value))

    def tg_unary(name):
        f = getattr(tg, name)

        def run():
            x.grad = None
            f(x).sum().backward()
            jax.block_until_ready(x.grad._data.value)
        return run

    # jax, op by op
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    one = jnp.ones((), jnp.float32)

    def mul_sum(p, q):
        return (p * q).sum()

    def jax_fwd():
        jax.block_until_ready(ja * jb)

    def jax_mul_sum_bwd():
        _, vjp = jax.vjp(mul_sum, ja, jb)
        jax.block_until_ready(vjp(one))

    def jax_unary(name):
        f = getattr(jax.nn, name) if name in ("sigmoid", "relu") else getattr(jnp, name)

        def g(p):
            return f(p).sum()

        def run():
            _, vjp = jax.vjp(g, ja)
            jax.block_until_ready(vjp(one))
        return run

    cases["x * y  (no grad)"] = {"tracegrad": tg_fwd_nograd, "jax": jax_fwd}
    cases["x * y  (requires grad)"] = {"tracegrad": tg_fwd_grad, "jax": jax_fwd}
    cases["(x * y).sum().backward()"] = {"tracegrad": tg_mul_sum_bwd, "jax": jax_mul_sum_bwd}
    for name in UNARY:
        cases[f"{name}(x).sum().backward()"] = {"tracegrad": tg_unary(name),
                                                "jax": jax_unary(name)}

    if torch is not None:
        tx = torch.tensor(a, requires_grad=True)
        ty = torch.tensor(b, requires_grad=True)
        txc, tyc = torch.tensor(a), torch.tensor(b)

        def t_unary(name):
            f = getattr(torch, name)

            def run():
                tx.grad = None
                f(tx).sum().backward()
            return run

        def t_mul_sum_bwd():
            tx.grad = ty.grad = None
            (tx * ty).sum().backward()

        cases["x * y  (no grad)"]["torch"] = lambda: txc * tyc
        cases["x * y  (requires grad)"]["torch"] = lambda: tx * ty
        cases["(x * y).sum().backward()"]["torch"] = t_mul_sum_bwd
        for name in UNARY:
            cases[f"{name}(x).sum().backward()"]["torch"] = t_unary(name)
    return cases


# ----------------------------------------------------------------------------- MLP step
SIZES = (784, 512, 512, 10)
BATCH = 128
LR = 0.01


def mlp_cases():
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    ys = rng.integers(0, SIZES[-1], BATCH)
    init = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / np.sqrt(fan_in)
        init.append((rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32),
                     rng.uniform(-bound, bound, fan_out).astype(np.float32)))
    cases = {}

    # tracegrad
    layers = []
    for w, b in init:
        lin = tg.nn.Linear(w.shape[1], w.shape[0])
        lin.load_state_dict({"weight": tg.tensor(w), "bias": tg.tensor(b)})
        layers += [lin, tg.nn.ReLU()]
    model = tg.nn.Sequential(*layers[:-1])
    params = list(model.parameters())
    opt = tg.optim.SGD(params, lr=LR)
    x, y = tg.tensor(xs), tg.tensor(ys)

    def tg_step():
        opt.zero_grad()
        loss = TF.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        jax.block_until_ready([p._data.value for p in params])
    cases["tracegrad"] = tg_step

    # jax op by op (value_and_grad without jit)
    jparams = [(jnp.asarray(w), jnp.asarray(b)) for w, b in init]
    jx, jy = jnp.asarray(xs), jnp.asarray(ys)

    def loss_fn(ps, xb, yb):
        h = xb
        for i, (w, b) in enumerate(ps):
            h = h @ w.T + b
            if i < len(ps) - 1:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h, axis=1)
        return -jnp.take_along_axis(logp, yb[:, None], axis=1).mean()

    state = [jparams]

    def jax_step():
        _, grads = jax.value_and_grad(loss_fn)(state[0], jx, jy)
        state[0] = jax.tree.map(lambda p, g: p - LR * g, state[0], grads)
        jax.block_until_ready(state[0])
    cases["jax"] = jax_step

    if torch is not None:
        tlayers = []
        for w, b in init:
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(w))
                lin.bias.copy_(torch.tensor(b))
            tlayers += [lin, torch.nn.ReLU()]
        tmodel = torch.nn.Sequential(*tlayers[:-1])
        topt = torch.optim.SGD(tmodel.parameters(), lr=LR)
        tx, ty = torch.tensor(xs), torch.tensor(ys)

        def torch_step():
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
            loss.backward()
            topt.step()
        cases["torch"] = torch_step
    return {"MLP step 784-512-512-10, batch 128": cases}


# ----------------------------------------------------------------------------- report
FRAMEWORKS = ("tracegrad", "torch", "jax")


def run(quick):
    if quick:
        op_cfg, mlp_cfg = dict(inner=100, repeats=5, warmup=50), dict(inner=3, repeats=5, warmup=3)
    else:
        op_cfg, mlp_cfg = dict(inner=300, repeats=15, warmup=200), dict(inner=5, repeats=15, warmup=5)
    rows = []
    for group, cfg in ((per_op_cases(), op_cfg), (mlp_cases(), mlp_cfg)):
        for name, fns in group.items():
            # interleave frameworks per repeat block so drifting machine load hits all alike
            times = {fw: timeit(fns[fw], **cfg) for fw in FRAMEWORKS if fw in fns}
            rows.append((name, times))
    return rows


def fmt_time(s):
    if s is None:
        return "-"
    return f"{s * 1e6:,.1f} us" if s < 1e-3 else f"{s * 1e3:,.2f} ms"


def fmt_ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def table(rows):
    head = ("case", "tracegrad", "torch", "jax (no jit)", "tg/torch", "tg/jax")
    body = []
    for name, t in rows:
        tg_t, th_t, jx_t = t.get("tracegrad"), t.get("torch"), t.get("jax")
        body.append((name, fmt_time(tg_t), fmt_time(th_t), fmt_time(jx_t),
                     fmt_ratio(tg_t, th_t), fmt_ratio(tg_t, jx_t)))
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in body:
        lines.append("| " + r[0].ljust(widths[0]) + " | "
                     + " | ".join(c.rjust(w) for c, w in zip(r[1:], widths[1:])) + " |")
    return "\n".join(lines)


def machine():
    bits = [platform.processor() or platform.machine(), f"{os.cpu_count()} cpus",
            f"python {platform.python_version()}", f"jax {jax.__version__}",
            f"tracegrad {tg.__version__}"]
    if torch is not None:
        bits.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    return ", ".join(bits)


def profile():
    import cProfile
    import pstats
    fn = per_op_cases()["(x * y).sum().backward()"]["tracegrad"]
    for _ in range(200):
        fn()
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(2000):
        fn()
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(30)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a few seconds)")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile tracegrad's (x * y).sum().backward() loop instead")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: time.perf_counter (default); cpu: time.process_time, the CPU "
                         "time of all the process's threads -- steadier on a loaded machine, "
                         "but blind to time spent waiting")
    ap.add_argument("--no-eager-jit", action="store_true",
                    help="turn off tracegrad's eager jit cache (every op impl runs op by op "
                         "through jax's dispatch), to see what the cache buys")
    args = ap.parse_args(argv)
    if args.no_eager_jit:
        from tracegrad.ops import _registry
        _registry.EAGER_JIT = False
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.process_time
    if args.profile:
        profile()
        return
    print(machine() + f", clock={args.clock}" + (", eager jit off" if args.no_eager_jit else ""))
    print(table(run(args.quick)))


if __name__ == "__main__":
    main()
