"""What the profiler costs on the op path.

    python benchmarks/profiler_overhead.py [--reps 30] [--n 2000] [--size 2] [--device cuda]

Variants, each timed as the mean per-op cost of a loop of ``--n`` eager ``mul`` calls on
small tensors, interleaved in random order over ``--reps`` repetitions (so drift in machine
speed hits all variants alike):

  no-check   ``apply`` rebuilt without the profiler check: ``_apply(op, args, params)``
             behind the same call layers (what the op path would cost with no profiler)
  off        the real ``ops._registry.apply``: one ``STATE.profiler`` load + ``is not None``
  on         the real ``apply`` inside ``profiler.profile()``: one event per op
  on+shapes  the same with ``record_shapes=True``

Also: the bare cost of the check itself, and of ``profiler.region(...)`` with no profile
active (what a compiled call pays per region when not profiling).

"Noise" is the spread of one variant across repetitions (interquartile range of the
per-repetition means). The off-vs-no-check verdict compares the difference of medians with
that noise.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import tracegrad as tg  # noqa: E402
from tracegrad.autograd import profiler  # noqa: E402
from tracegrad.ops import _registry  # noqa: E402
from tracegrad._state import STATE  # noqa: E402
from tracegrad.ops._registry import REGISTRY, _apply, apply  # noqa: E402


def apply_nocheck(op, *args, **params):
    """``_registry.apply`` with its profiler check taken out: the baseline."""
    return _apply(op, args, params)


def loop(fn, op, a, b, n):
    t = time.perf_counter_ns()
    for _ in range(n):
        fn(op, a, b)
    return (time.perf_counter_ns() - t) / n


def quartiles(xs):
    q = statistics.quantiles(xs, n=4)
    return q[0], statistics.median(xs), q[2]


def bare_check(n):
    """ns per ``STATE.profiler is not None`` (loop overhead subtracted)."""
    h = STATE
    t = time.perf_counter_ns()
    for _ in range(n):
        pass
    empty = time.perf_counter_ns() - t
    t = time.perf_counter_ns()
    for _ in range(n):
        if h.profiler is not None:
            pass
    return max(0.0, (time.perf_counter_ns() - t - empty) / n)


def region_off(n):
    """ns per ``with profiler.region("x"): pass`` with no profile active."""
    t = time.perf_counter_ns()
    for _ in range(n):
        pass
    empty = time.perf_counter_ns() - t
    region = profiler.region
    t = time.perf_counter_ns()
    for _ in range(n):
        with region("tg.compile.forward"):
            pass
    return max(0.0, (time.perf_counter_ns() - t - empty) / n)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--size", type=int, default=2, help="tensor length (small: overhead-bound)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    assert _registry.apply is apply and STATE.profiler is None

    op = REGISTRY["mul"]
    a = tg.ones(args.size, device=args.device).requires_grad_()
    b = tg.ones(args.size, device=args.device)
    for fn in (apply, apply_nocheck):       # warm up jax's dispatch caches
        loop(fn, op, a, b, 200)

    def on(shapes):
        def run(n):
            with profiler.profile(record_shapes=shapes):
                return loop(apply, op, a, b, n)
        return run

    variants = {
        "no-check": lambda n: loop(apply_nocheck, op, a, b, n),
        "off": lambda n: loop(apply, op, a, b, n),
        "on": on(False),
        "on+shapes": on(True),
    }
    rng = random.Random(args.seed)
    res = {k: [] for k in variants}
    for _ in range(args.reps):
        order = list(variants)
        rng.shuffle(order)
        for k in order:
            res[k].append(variants[k](args.n))

    print(f"tracegrad profiler overhead: eager mul on float32[{args.size}] (+ autograd node), "
          f"{args.reps} reps x {args.n} ops, device {args.device}, python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} cpus")
    print(f"{'variant':<12}{'p25 ns/op':>12}{'median':>12}{'p75':>12}{'IQR':>10}")
    q = {}
    for k, xs in res.items():
        q[k] = quartiles(xs)
        lo, med, hi = q[k]
        print(f"{k:<12}{lo:>12.0f}{med:>12.0f}{hi:>12.0f}{hi - lo:>10.0f}")
    base = q["no-check"][1]
    diff = q["off"][1] - base
    noise = max(q["off"][2] - q["off"][0], q["no-check"][2] - q["no-check"][0])
    # paired: each rep timed both variants back to back in random order
    paired = [o - n for o, n in zip(res["off"], res["no-check"])]
    pq = quartiles(paired)
    print()
    print(f"off - no-check: {diff:+.0f} ns/op ({100 * diff / base:+.2f}%), noise (IQR) {noise:.0f} "
          f"ns/op -> {'within noise' if abs(diff) <= noise else 'OUTSIDE noise'}")
    print(f"  paired per-rep difference: median {pq[1]:+.0f} ns, IQR [{pq[0]:+.0f}, {pq[2]:+.0f}]")
    print(f"on - off:       {q['on'][1] - q['off'][1]:+.0f} ns/op "
          f"({q['on'][1] / q['off'][1]:.2f}x); with shapes "
          f"{q['on+shapes'][1] - q['off'][1]:+.0f} ns/op")
    chk = statistics.median(bare_check(200_000) for _ in range(7))
    reg = statistics.median(region_off(200_000) for _ in range(7))
    print(f"the check alone (STATE.profiler is not None): {chk:.1f} ns")
    print(f"profiler.region(...) entered and left with no profile: {reg:.0f} ns")


if __name__ == "__main__":
    main()
