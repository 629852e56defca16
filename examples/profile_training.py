"""Profile a few training steps of a small MLP, eager and compiled, and print both tables.

    python examples/profile_training.py [--steps 5] [--trace-dir DIR] [--cuda]

The eager table shows every op (``aten::mm``, ...) and every backward node
(``MmBackward0``, ``AccumulateGrad``, ...). The compiled table shows ``tg.compile[loss_fn]``
once with ``cache="miss"`` (trace, codegen, XLA compile) and then hits (forward and backward
runs only). Both traces are written as Chrome/Perfetto JSON: open them at
https://ui.perfetto.dev (see docs/profiler.md).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import tracegrad as tg  # noqa: E402
from tracegrad.autograd.profiler import profile, record_function  # noqa: E402


def make_params(device):
    tg.manual_seed(0)
    p = {"w1": tg.randn(16, 32) * 0.3, "b1": tg.zeros(32),
         "w2": tg.randn(32, 1) * 0.3, "b2": tg.zeros(1)}
    return {k: v.to(device).requires_grad_() for k, v in p.items()}


def loss_fn(x, y, w1, b1, w2, b2):
    h = tg.relu(x @ w1 + b1)
    return ((h @ w2 + b2 - y) ** 2).mean()


def train(step_loss, params, x, y, steps, lr=0.1):
    for _ in range(steps):
        with record_function("train_step"):
            loss = step_loss(x, y, *params.values())
            loss.backward()
            with tg.no_grad(), record_function("sgd"):
                for p in params.values():
                    p.sub_(lr * p.grad)
                    p.grad = None
    return loss.item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rows", type=int, default=10, help="table rows to print")
    ap.add_argument("--trace-dir", default=None, help="where to write the traces (default: a temp dir)")
    ap.add_argument("--cuda", action="store_true", help="run on the GPU and profile with use_cuda")
    args = ap.parse_args()
    device = "cuda" if args.cuda else "cpu"
    out = args.trace_dir or tempfile.mkdtemp(prefix="tracegrad-profile-")
    os.makedirs(out, exist_ok=True)

    tg.manual_seed(1)
    x = tg.randn(64, 16).to(device)
    y = (x[:, :1] * 2.0 - 1.0).to(device)

    params = make_params(device)
    with profile(use_cuda=args.cuda, record_shapes=True) as prof:
        loss = train(loss_fn, params, x, y, args.steps)
    print(f"== eager: {args.steps} steps, final loss {loss:.4f}")
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=args.rows))
    path = os.path.join(out, "eager_trace.json")
    prof.export_chrome_trace(path)
    print(f"trace: {path}\n")

    if not hasattr(tg, "compile"):
        print("(tracegrad.compile is not available in this build: compiled steps skipped)")
        return
    params = make_params(device)
    compiled = tg.compile(loss_fn)
    with profile(use_cuda=args.cuda) as prof:
        loss = train(compiled, params, x, y, args.steps)
    print(f"== compiled: {args.steps} steps, final loss {loss:.4f}")
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=args.rows))
    calls = [e for e in prof.events() if e.name.startswith("tg.compile[")]
    print("cache per call:", " ".join(e.args.get("cache", "?") for e in calls))
    xla = [e for e in prof.events() if e.name == "tg.compile.xla_compile"]
    for e in xla:
        if "flops" in e.args:
            print(f"XLA cost analysis of the forward program: {e.args['flops']:.0f} flops, "
                  f"{e.args.get('bytes_accessed', 0):.0f} bytes accessed")
    path = os.path.join(out, "compiled_trace.json")
    prof.export_chrome_trace(path)
    print(f"trace: {path}")


if __name__ == "__main__":
    main()
