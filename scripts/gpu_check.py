"""tracegrad on a GPU: correctness of compiled programs on ``tg.device('cuda')``, then speed.

    python scripts/gpu_check.py                  # checks + benchmark (under 3 minutes)
    python scripts/gpu_check.py --no-bench       # checks only
    python scripts/gpu_check.py --torch-compile  # also time torch.compile (slow to compile)

Needs a jax that sees a GPU (a CUDA build of jaxlib; this script installs nothing). Without
one it prints "SKIP: no GPU" and exits 0. Exits 1 when a check fails.

Checks (each compiled forward + backward on the GPU against the same program on the CPU):
  - the spec example  c = 2*a + 3*b + 1; d = 2*c + 1  (values, grads, grad_fn, is_leaf)
  - an MLP training step (cross-entropy with class targets, SGD under no_grad), 3 steps
  - a tensor hook and retain_grad inside a compiled function (host callbacks from the GPU)
  - eager ops, .to('cuda') / .cpu() round trips, and a closure-captured GPU parameter
and every result is asserted to live on the GPU: ``t.device.type == 'cuda'`` and the jax
array's platform is 'gpu'.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, "benchmarks")):
    if p not in sys.path:
        sys.path.insert(0, p)

import jax  # noqa: E402


def _gpus():
    try:
        return jax.devices("gpu")
    except RuntimeError:
        return []


# --------------------------------------------------------------------------- helpers
GPU, PLATFORM = "cuda", "gpu"  # --cpu-dry-run swaps in "cpu" to test this script's logic


def on_gpu(t, what):
    """Assert a tracegrad tensor is on the GPU, by its label and by where its array is."""
    assert t.device.type == GPU, f"{what}: device is {t.device}, expected {GPU}"
    plat = next(iter(t._data.value.devices())).platform
    assert plat == PLATFORM, f"{what}: its jax array lives on {plat}, expected {PLATFORM}"


def close(a, b, what, rtol=1e-5, atol=1e-6):
    a = np.asarray(a.detach().cpu().numpy() if hasattr(a, "detach") else a)
    b = np.asarray(b.detach().cpu().numpy() if hasattr(b, "detach") else b)
    if not np.allclose(a, b, rtol=rtol, atol=atol):
        err = np.max(np.abs(a - b))
        raise AssertionError(f"{what}: GPU and CPU differ (max abs diff {err:.3g})")


# --------------------------------------------------------------------------- checks
def check_spec_example(tg):
    def f(a, b):
        c = 2 * a + 3 * b + 1
        d = 2 * c + 1
        return d
    res = {}
    for dev in ("cpu", GPU):
        a = tg.tensor([1.0, 2.0, 3.0], device=dev, requires_grad=True)
        b = tg.tensor([4.0, 5.0, 6.0], device=dev, requires_grad=True)
        cf = tg.compile(f)
        d = cf(a, b)
        assert d.requires_grad and not d.is_leaf and d.grad_fn.name() == "CompiledFunctionBackward"
        d.sum().backward()
        res[dev] = (d, a.grad, b.grad)
    d, ga, gb = res[GPU]
    for t, what in ((d, "d"), (ga, "a.grad"), (gb, "b.grad")):
        on_gpu(t, what)
    for x, y, what in zip(res[GPU], res["cpu"], ("d", "a.grad", "b.grad")):
        close(x, y, what)
    close(ga, np.full(3, 4.0), "a.grad == 4")
    close(gb, np.full(3, 6.0), "b.grad == 6")


def check_mlp_step(tg):
    # float32 matmuls on a GPU may use TF32 unless asked not to: compare at full precision
    with jax.default_matmul_precision("highest"):
        return _mlp_step(tg)


def _mlp_step(tg):
    import compiled as bench
    host_params, (hx, hy) = bench.mlp_data(batch=32, dims=(64, 32, 32, 10))
    res = {}
    for dev in ("cpu", GPU):
        ps = [tg.tensor(p, device=dev, requires_grad=True) for p in host_params]
        x, y = tg.tensor(hx, device=dev), tg.tensor(hy, device=dev)
        step = tg.compile(lambda x, y: bench.mlp_loss(tg, ps, x, y))
        losses = []
        for _ in range(3):
            loss = step(x, y)
            loss.backward()
            with tg.no_grad():
                for p in ps:
                    p -= 0.1 * p.grad
            grads = [p.grad for p in ps]
            for p in ps:
                p.grad = None
            losses.append(loss)
        assert step.stats["traces"] == 1, f"retraced: {step.stats['miss_reasons']}"
        # steps 2 and 3 run forward+backward as one joint program (docs/compile.md)
        assert step.stats["joint_calls"] == 2, f"joint program calls: {step.stats['joint_calls']}"
        res[dev] = (losses, grads, ps)
    losses, grads, ps = res[GPU]
    for t in losses + grads + ps:
        on_gpu(t, "MLP loss/grad/param")
    for a, b in zip(losses, res["cpu"][0]):
        close(a, b, "MLP loss", rtol=1e-4, atol=1e-5)
    for a, b in zip(grads, res["cpu"][1]):
        close(a, b, "MLP grad", rtol=1e-3, atol=1e-5)


def check_hooks(tg):
    seen = {}

    def triple(g):  # runs on the host, called from the compiled backward program
        seen["in-graph"] = g.device.type
        return g * 3

    def f(x):
        y = x * 2
        y.register_hook(triple)
        z = y * y
        z.retain_grad()
        return z.sum(), z
    res = {}
    for dev in ("cpu", GPU):
        x = tg.tensor([1.0, -2.0, 3.0], device=dev, requires_grad=True)
        cf = tg.compile(f)

        def probe(g, dev=dev):
            seen[dev] = g.device.type
        x.register_hook(probe)
        loss, z = cf(x)
        loss.backward()
        res[dev] = (x.grad, z.grad)
    gx, gz = res[GPU]
    on_gpu(gx, "x.grad with a hook in the compiled backward")
    close(gx, res["cpu"][0], "x.grad with a hook")
    close(gx, np.array([1.0, -2.0, 3.0]) * 2 * 2 * 2 * 3, "x.grad = 2*y * 3 * 2")
    close(gz, res["cpu"][1], "z.grad from retain_grad")
    assert seen.get("in-graph") == GPU, \
        f"a hook inside the compiled function saw a gradient on {seen.get('in-graph')!r}"
    return (f"(gradient devices seen by hooks: on the input {seen.get(GPU)!r}, inside the "
            f"compiled function {seen.get('in-graph')!r})")


def check_placement(tg):
    x = tg.randn(4, 3, device=GPU, requires_grad=True)
    on_gpu(x, "randn(device='cuda')")
    w = tg.ones(3, 2).to(GPU).requires_grad_()
    on_gpu(w, ".to('cuda')")
    back = (x @ w).cpu()
    assert back.device.type == "cpu" and next(iter(back._data.value.devices())).platform == "cpu"
    if GPU == "cpu":
        return ""
    f = tg.compile(lambda x: (x @ w).relu().sum())  # w is captured by the closure
    f(x).backward()
    on_gpu(x.grad, "x.grad (compiled, captured GPU weight)")
    on_gpu(w.grad, "w.grad of a captured GPU parameter")
    xe = x.detach().requires_grad_()
    we = w.detach().requires_grad_()
    (xe @ we).relu().sum().backward()
    close(x.grad, xe.grad, "compiled vs eager x.grad on GPU")
    close(w.grad, we.grad, "compiled vs eager w.grad on GPU")
    try:
        x + tg.ones(4, 3)
    except RuntimeError as e:
        assert "same device" in str(e), e
    else:
        raise AssertionError("adding a cuda and a cpu tensor did not raise")


CHECKS = [("spec example c=2a+3b+1, d=2c+1", check_spec_example),
          ("MLP training step (3 steps)", check_mlp_step),
          ("tensor hook + retain_grad in a compiled fn", check_hooks),
          ("placement: randn/to/cpu, captured GPU param, mixed devices", check_placement)]


def run_checks(tg):
    failures = 0
    for name, fn in CHECKS:
        t0 = time.perf_counter()
        try:
            extra = fn(tg) or ""
            print(f"PASS  {name}  ({time.perf_counter() - t0:.1f}s) {extra}", flush=True)
        except Exception:
            failures += 1
            print(f"FAIL  {name}", flush=True)
            traceback.print_exc()
    return failures


# --------------------------------------------------------------------------- benchmark
def run_bench(torch_compile):
    import compiled as bench
    out = {}
    for label, make in (("MLP fwd+bwd", lambda: bench.mlp_cases(GPU, False, True, torch_compile)),
                        ("MLP training step", lambda: bench.mlp_cases(GPU, True, True, torch_compile)),
                        ("transformer block fwd+bwd",
                         lambda: bench.transformer_cases(GPU, True, torch_compile))):
        cases = make()
        times = bench.run_cases(cases, rounds=10, iters=5)
        notes = {c.name: c.note for c in cases if c.step is None}
        print(bench.format_table(f"\n{label} on the GPU", times, "jax.jit(value_and_grad)",
                                 notes=notes), flush=True)
        out[label] = times
    oh = bench.overhead(n=300, rounds=5, device=GPU)
    print(bench.format_table("\ncache-hit call x*2+1 (16 elements) on the GPU: forward",
                             oh["forward"], "jax.jit", unit="us", scale=1e6))
    print(bench.format_table("    forward+backward", oh["forward+backward"],
                             "jax.jit(value_and_grad)", unit="us", scale=1e6), flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-bench", action="store_true")
    ap.add_argument("--torch-compile", action="store_true")
    ap.add_argument("--cpu-dry-run", action="store_true",
                    help="run the checks with 'cpu' in place of 'cuda' (tests this script)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    print(f"jax {jax.__version__}, default backend {jax.default_backend()}, devices {jax.devices()}")
    if args.cpu_dry_run:
        global GPU, PLATFORM
        GPU, PLATFORM = "cpu", "cpu"
        import tracegrad as tg
        failures = run_checks(tg)
        print(f"dry run on cpu: {'FAILED' if failures else 'OK'}")
        return 1 if failures else 0
    if not _gpus():
        print("SKIP: no GPU (jax sees no GPU backend; install a CUDA build of jax on a machine "
              "with an NVIDIA GPU)")
        return 0
    import tracegrad as tg
    assert tg.cuda.is_available() and tg.cuda.device_count() >= 1
    failures = run_checks(tg)
    if failures:
        print(f"\n{failures} of {len(CHECKS)} checks FAILED")
    if not args.no_bench:
        try:
            import compiled as bench
            print("\nmachine:", bench.machine("cuda"))
            run_bench(args.torch_compile)
        except Exception:
            failures += 1
            print("FAIL  benchmark")
            traceback.print_exc()
    print(f"\ntotal {time.perf_counter() - t0:.1f}s; {'FAILED' if failures else 'OK'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
