"""tracegrad.compile side by side with jax.jit, PyTorch eager and torch.compile, in one process.

    python benchmarks/compiled.py            # full run (about 2-4 minutes on 2 CPU cores)
    python benchmarks/compiled.py --quick    # fewer repetitions, smaller first-call sample
    python benchmarks/compiled.py --no-torch # skip PyTorch even where it is installed
    python benchmarks/compiled.py --device cuda   # on a GPU (jax must see it)

Four measurements, each reported as a ratio to jax.jit of the same math:

  (a) MLP 784-512-512-10, batch 128, ReLU, cross-entropy with class targets (log_softmax +
      integer indexing): forward + backward, and a full SGD training step.
  (b) a transformer block (d_model 128, 4 heads, seq 64, batch 8; layernorm from mean/var,
      softmax attention, 4x MLP): forward + backward.
  (c) cache-hit call overhead on ``x * 2 + 1`` over 16 elements: forward only, and
      forward + backward.
  (d) first-call latency (trace + compile + run forward and backward) of fresh functions.

Timing: ``time.perf_counter``; warm-up calls first; every step blocks until its results are
ready (``block_until_ready`` / tensors read back); implementations are interleaved round by
round (in an order rotated each round, so none always runs right after PyTorch, whose OpenMP
threads keep spinning for a while) so drift of the machine hits them alike; the reported number
is the median over rounds.
The math of the tracegrad and PyTorch versions is literally the same function, called with
``T = tracegrad`` or ``T = torch``.

The functions ``mlp_cases``, ``transformer_cases``, ``run_cases`` and ``format_table`` are
imported by scripts/gpu_check.py.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import tracegrad as tg  # noqa: E402

LR = 0.01

# --------------------------------------------------------------------------- optional torch
_TORCH = None
_TORCH_WHY = None
_TORCH_COMPILE_WHY = None


def torch_module(enabled=True, threads=None):
    """PyTorch if it can be imported (and is wanted), else None; the reason is kept.
    ``threads`` sets torch's intra-op threads (its default otherwise): on a machine whose
    load exceeds its cores, OpenMP's spinning makes torch with 2+ threads 10-50x slower."""
    global _TORCH, _TORCH_WHY
    if not enabled:
        _TORCH_WHY = "disabled (--no-torch)"
        return None
    if _TORCH is None and _TORCH_WHY is None:
        try:
            import torch
            if threads:
                torch.set_num_threads(threads)
            _TORCH = torch
        except Exception as e:  # not installed, or a broken install
            _TORCH_WHY = f"not importable: {type(e).__name__}: {e}"
    return _TORCH


def torch_compile_works(torch):
    """Whether torch.compile can compile and run a tiny function here (inductor needs a C++
    compiler on CPU); the reason when it cannot. The check itself also pays torch.compile's
    one-time start-up cost, so the first-call numbers below measure a warm process."""
    global _TORCH_COMPILE_WHY
    if _TORCH_COMPILE_WHY is not None:
        return False
    try:
        f = torch.compile(lambda x: (x * 3 + 2).relu().sum())
        x = torch.randn(16, requires_grad=True)
        f(x).backward()
        return True
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        _TORCH_COMPILE_WHY = f"{type(e).__name__}: {msg[:160]}"
        return False


def torch_device(torch, device):
    if device == "cuda":
        return "cuda" if torch.cuda.is_available() else None
    return "cpu"


# --------------------------------------------------------------------------- the math
def mlp_loss(T, params, x, y):
    """Cross-entropy of a 3-layer ReLU MLP; ``T`` is ``tracegrad`` or ``torch``."""
    W1, b1, W2, b2, W3, b3 = params
    h = T.relu(x @ W1 + b1)
    h = T.relu(h @ W2 + b2)
    logits = h @ W3 + b3
    lp = T.log_softmax(logits, dim=1)
    return -lp[T.arange(x.shape[0], device=x.device), y].mean()


def mlp_loss_jax(params, x, y):
    W1, b1, W2, b2, W3, b3 = params
    h = jax.nn.relu(x @ W1 + b1)
    h = jax.nn.relu(h @ W2 + b2)
    logits = h @ W3 + b3
    lp = jax.nn.log_softmax(logits, axis=1)
    return -lp[jnp.arange(x.shape[0]), y].mean()


def _layernorm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=False)
    return (x - mu) / (var + eps).sqrt() * g + b


def block_loss(T, params, x, heads=4):
    """A pre-norm transformer block (attention + 4x ReLU MLP), then mean of squares."""
    g1, be1, Wq, Wk, Wv, Wo, g2, be2, W1, c1, W2, c2 = params
    B, S, D = x.shape
    dh = D // heads
    h = _layernorm(x, g1, be1)

    def split(t):
        return t.reshape(B, S, heads, dh).transpose(1, 2)
    q, k, v = split(h @ Wq), split(h @ Wk), split(h @ Wv)
    att = T.softmax(q @ k.transpose(-2, -1) / math.sqrt(dh), dim=-1)
    a = (att @ v).transpose(1, 2).reshape(B, S, D)
    x = x + a @ Wo
    h = _layernorm(x, g2, be2)
    x = x + T.relu(h @ W1 + c1) @ W2 + c2
    return (x * x).mean()


def _layernorm_jax(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + eps) * g + b


def block_loss_jax(params, x, heads=4):
    g1, be1, Wq, Wk, Wv, Wo, g2, be2, W1, c1, W2, c2 = params
    B, S, D = x.shape
    dh = D // heads
    h = _layernorm_jax(x, g1, be1)

    def split(t):
        return t.reshape(B, S, heads, dh).transpose(0, 2, 1, 3)
    q, k, v = split(h @ Wq), split(h @ Wk), split(h @ Wv)
    att = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh), axis=-1)
    a = (att @ v).transpose(0, 2, 1, 3).reshape(B, S, D)
    x = x + a @ Wo
    h = _layernorm_jax(x, g2, be2)
    x = x + jax.nn.relu(h @ W1 + c1) @ W2 + c2
    return (x * x).mean()


# --------------------------------------------------------------------------- host data
def mlp_data(batch=128, dims=(784, 512, 512, 10), seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for i, o in zip(dims[:-1], dims[1:]):
        params.append((rng.standard_normal((i, o)) / math.sqrt(i)).astype(np.float32))
        params.append(np.zeros(o, np.float32))
    x = rng.standard_normal((batch, dims[0])).astype(np.float32)
    y = rng.integers(0, dims[-1], batch).astype(np.int64)
    return params, (x, y)


def block_data(batch=8, seq=64, d=128, seed=0):
    rng = np.random.default_rng(seed)

    def w(i, o):
        return (rng.standard_normal((i, o)) / math.sqrt(i)).astype(np.float32)
    ones, zeros = np.ones(d, np.float32), np.zeros(d, np.float32)
    params = [ones, zeros, w(d, d), w(d, d), w(d, d), w(d, d), ones.copy(), zeros.copy(),
              w(d, 4 * d), np.zeros(4 * d, np.float32), w(4 * d, d), zeros.copy()]
    x = rng.standard_normal((batch, seq, d)).astype(np.float32)
    return params, (x,)


# --------------------------------------------------------------------------- cases
class Case:
    """One implementation of one workload: ``step()`` runs one step and waits for it;
    ``loss()`` is the loss of the first step (for the cross-check)."""

    def __init__(self, name, step, note=""):
        self.name, self.step, self.note = name, step, note
        self.first_loss = None


def _tg_step(loss_fn, params, inputs, update):
    def step():
        loss = loss_fn(*inputs)
        loss.backward()
        if update:
            with tg.no_grad():
                for p in params:
                    p -= LR * p.grad
            done = [p._data.value for p in params]
        else:
            done = [p.grad._data.value for p in params]
        for p in params:
            p.grad = None
        jax.block_until_ready(done)  # everything the step made, not only the loss
        return loss.detach()
    return step


def _jax_steps(loss_jax, params, inputs, update):
    vg = jax.jit(jax.value_and_grad(loss_jax))
    state = {"p": list(params)}

    def step():
        loss, grads = vg(state["p"], *inputs)
        if update:
            state["p"] = [p - LR * g for p, g in zip(state["p"], grads)]
            jax.block_until_ready(state["p"])
        else:
            jax.block_until_ready(grads)
        return loss

    @jax.jit
    def fused(p, *inputs):
        loss, grads = jax.value_and_grad(loss_jax)(p, *inputs)
        return loss, [a - LR * g for a, g in zip(p, grads)]
    fstate = {"p": list(params)}

    def fused_step():
        loss, fstate["p"] = fused(fstate["p"], *inputs)
        jax.block_until_ready(fstate["p"])
        return loss
    return step, fused_step


def _torch_step(torch, loss_fn, params, inputs, update, dev):
    def step():
        loss = loss_fn(*inputs)
        loss.backward()
        with torch.no_grad():
            if update:
                for p in params:
                    p -= LR * p.grad
        for p in params:
            p.grad = None
        if dev == "cuda":
            torch.cuda.synchronize()
        return loss.detach()
    return step


def _make_cases(workload, math_tg, math_jax, data, device, update, use_torch, use_torch_compile):
    host_params, host_inputs = data
    cases = []
    jdev = tg.device(device).jax_device()

    # tracegrad: parameters are captured by the closure, as a model's parameters would be
    tparams = [tg.tensor(p, device=device, requires_grad=True) for p in host_params]
    tinputs = [tg.tensor(a, device=device) for a in host_inputs]
    compiled = tg.compile(lambda *a: math_tg(tg, tparams, *a))
    cases.append(Case("tracegrad.compile", _tg_step(compiled, tparams, tinputs, update)))
    eparams = [tg.tensor(p, device=device, requires_grad=True) for p in host_params]
    cases.append(Case("tracegrad eager", _tg_step(lambda *a: math_tg(tg, eparams, *a), eparams,
                                                  tinputs, update)))

    jparams = [jax.device_put(p, jdev) for p in host_params]
    jinputs = [jax.device_put(a, jdev) for a in host_inputs]
    step, fused = _jax_steps(math_jax, jparams, jinputs, update)
    cases.append(Case("jax.jit(value_and_grad)", step,
                      "+ SGD update as jax ops outside the jit" if update else ""))
    if update:
        cases.append(Case("jax.jit(whole step)", fused, "value_and_grad and the update in one jit"))

    torch = torch_module(use_torch)
    if torch is not None:
        tdev = torch_device(torch, device)
        if tdev is None:
            _note_skip(cases, "torch eager", "PyTorch has no CUDA here")
        else:
            def mk():
                ps = [torch.tensor(p, device=tdev, requires_grad=True) for p in host_params]
                ins = [torch.tensor(a, device=tdev) for a in host_inputs]
                return ps, ins
            ps, ins = mk()
            cases.append(Case("torch eager", _torch_step(
                torch, lambda *a: math_tg(torch, ps, *a), ps, ins, update, tdev)))
            if use_torch_compile and torch_compile_works(torch):
                ps2, ins2 = mk()
                tc = torch.compile(lambda *a: math_tg(torch, ps2, *a))
                cases.append(Case("torch.compile", _torch_step(torch, tc, ps2, ins2, update, tdev)))
            else:
                _note_skip(cases, "torch.compile", _TORCH_COMPILE_WHY or "skipped")
    else:
        _note_skip(cases, "torch eager", _TORCH_WHY)
        _note_skip(cases, "torch.compile", _TORCH_WHY)
    return cases


def _note_skip(cases, name, why):
    c = Case(name, None, f"unavailable: {why}")
    cases.append(c)


def mlp_cases(device="cpu", update=True, use_torch=True, use_torch_compile=True):
    return _make_cases("mlp", mlp_loss, mlp_loss_jax, mlp_data(), device, update, use_torch,
                       use_torch_compile)


def transformer_cases(device="cpu", use_torch=True, use_torch_compile=True):
    return _make_cases("block", block_loss, block_loss_jax, block_data(), device, False,
                       use_torch, use_torch_compile)


def _loss_value(x):
    if hasattr(x, "_data"):  # tracegrad
        x = x._data.value
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu().numpy()
    return float(np.asarray(x))


def run_cases(cases, rounds=15, iters=3, warmup=3, check=True):
    """Median seconds per step of each case, interleaved round by round.

    The first call of each case (compilation included) also gives its first-step loss, which
    must agree across implementations (they start from the same parameters)."""
    live = [c for c in cases if c.step is not None]
    for c in live:
        c.first_loss = _loss_value(c.step())
        for _ in range(warmup):
            c.step()
    if check:
        ref = live[0].first_loss
        for c in live:
            if not math.isclose(c.first_loss, ref, rel_tol=2e-4, abs_tol=1e-5):
                raise AssertionError(f"{c.name}: first-step loss {c.first_loss!r} differs from "
                                     f"{live[0].name}'s {ref!r}")
    samples = {c.name: [] for c in live}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            # rotate the order each round: a case run right after PyTorch pays for OpenMP
            # threads still spinning on the cores, so no case may always follow the same one
            for c in live[r % len(live):] + live[:r % len(live)]:
                t0 = time.perf_counter()
                for _ in range(iters):
                    c.step()
                samples[c.name].append((time.perf_counter() - t0) / iters)
            gc.collect()
    finally:
        if gc_was:
            gc.enable()
    return {name: statistics.median(s) for name, s in samples.items()}


# --------------------------------------------------------------------------- (c) call overhead
def tiny(x):
    return x * 2 + 1


def tiny_loss(x):
    return (x * 2 + 1).sum()


def overhead(n=2000, rounds=7, device="cpu"):
    """Per-call time (seconds) of a cache hit on 16 elements, each call waited for."""
    jdev = tg.device(device).jax_device()
    host = np.arange(16, dtype=np.float32)
    res = {}

    x = tg.tensor(host, device=device)
    f = tg.compile(tiny)
    xr = tg.tensor(host, device=device, requires_grad=True)
    fl = tg.compile(tiny_loss)
    jx = jax.device_put(host, jdev)
    jf = jax.jit(tiny)
    jvg = jax.jit(jax.value_and_grad(tiny_loss))

    def tg_fwd():
        f(x)._data.value.block_until_ready()

    def tg_fwd_bwd():
        loss = fl(xr)
        loss.backward()
        g = xr.grad
        xr.grad = None
        g._data.value.block_until_ready()

    def jax_fwd():
        jf(jx).block_until_ready()

    def jax_fwd_bwd():
        jax.block_until_ready(jvg(jx))

    pairs = {"forward": {"tracegrad.compile": tg_fwd, "jax.jit": jax_fwd},
             "forward+backward": {"tracegrad.compile": tg_fwd_bwd,
                                  "jax.jit(value_and_grad)": jax_fwd_bwd}}
    for kind, fns in pairs.items():
        samples = {k: [] for k in fns}
        for fn in fns.values():
            for _ in range(200):
                fn()
        gc.disable()
        try:
            for _ in range(rounds):
                for name, fn in fns.items():
                    t0 = time.perf_counter()
                    for _ in range(n):
                        fn()
                    samples[name].append((time.perf_counter() - t0) / n)
        finally:
            gc.enable()
        res[kind] = {k: statistics.median(v) for k, v in samples.items()}
    return res


def profile_hit(n=20000, backward=False, top=25):
    """cProfile of cache-hit calls (tottime per call, microseconds), for the report."""
    import cProfile
    import pstats
    host = np.arange(16, dtype=np.float32)
    if backward:
        xr = tg.tensor(host, requires_grad=True)
        fl = tg.compile(tiny_loss)

        def call():
            fl(xr).backward()
            xr.grad = None
    else:
        x = tg.tensor(host)
        f = tg.compile(tiny)

        def call():
            f(x)
    for _ in range(100):
        call()
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(n):
        call()
    pr.disable()
    st = pstats.Stats(pr)
    rows = []
    for (file, line, fn), (cc, nc, tt, ct, callers) in st.stats.items():
        rows.append((tt / n * 1e6, ct / n * 1e6, nc / n, f"{os.path.basename(file)}:{line}({fn})"))
    rows.sort(reverse=True)
    return rows[:top]


# --------------------------------------------------------------------------- (d) first call
def first_call(reps=3, use_torch=True, use_torch_compile=True):
    """Seconds from a fresh function to its first forward + backward done (trace, codegen,
    XLA compile of forward and backward, run), median over ``reps`` fresh functions.

    Every framework is warm (imports done, one compile already paid) before this runs. A
    fresh Python function object defeats jax.jit's and tracegrad's in-memory caches;
    torch.compile is measured with ``torch._inductor.config.force_disable_caches = True``
    so its on-disk caches do not hide the compile."""
    host_params, (hx, hy) = mlp_data()
    res = {}

    def tg_once():
        ps = [tg.tensor(p, requires_grad=True) for p in host_params]
        x, y = tg.tensor(hx), tg.tensor(hy)
        f = tg.compile(lambda x, y: mlp_loss(tg, ps, x, y))
        t0 = time.perf_counter()
        f(x, y).backward()
        ps[0].grad._data.value.block_until_ready()
        return time.perf_counter() - t0

    def jax_once():
        ps = [jnp.asarray(p) for p in host_params]
        x, y = jnp.asarray(hx), jnp.asarray(hy)
        vg = jax.jit(jax.value_and_grad(lambda p, x, y: mlp_loss_jax(p, x, y)))
        t0 = time.perf_counter()
        jax.block_until_ready(vg(ps, x, y))
        return time.perf_counter() - t0

    tg_once(), jax_once()  # warm: one-time costs of the first compile in the process
    res["tracegrad.compile"] = statistics.median(tg_once() for _ in range(reps))
    res["jax.jit(value_and_grad)"] = statistics.median(jax_once() for _ in range(reps))
    torch = torch_module(use_torch)
    if torch is not None and use_torch_compile and torch_compile_works(torch):
        def torch_once():
            torch._dynamo.reset()
            ps = [torch.tensor(p, requires_grad=True) for p in host_params]
            x, y = torch.tensor(hx), torch.tensor(hy)
            f = torch.compile(lambda x, y: mlp_loss(torch, ps, x, y))
            t0 = time.perf_counter()
            f(x, y).backward()
            return time.perf_counter() - t0
        cfg = torch._inductor.config
        old = getattr(cfg, "force_disable_caches", None)
        try:
            if old is not None:
                cfg.force_disable_caches = True
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res["torch.compile"] = statistics.median(torch_once() for _ in range(max(1, reps - 2)))
        finally:
            if old is not None:
                cfg.force_disable_caches = old
    return res


# --------------------------------------------------------------------------- report
def machine(device="cpu"):
    d = jax.devices()[0]
    backend = jax.default_backend()
    load = ", load average %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    parts = [f"{platform.machine()} {os.cpu_count()} CPUs{load}", f"python {platform.python_version()}",
             f"jax {jax.__version__} (backend {backend}: {d.device_kind})", f"tracegrad {tg.__version__}"]
    torch = _TORCH
    if torch is not None:
        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    parts.append(f"device {device}")
    return "; ".join(parts)


def format_table(title, times, ref, unit="ms", scale=1e3, notes=None):
    """Rows: name, median time, and the ratio to ``ref`` (time / ref's time)."""
    lines = [title, f"  {'implementation':28s} {'median ' + unit:>12s} {'ratio vs ' + ref:>22s}"]
    base = times.get(ref)
    for name, t in times.items():
        ratio = f"{t / base:.3f}x" if base else "-"
        lines.append(f"  {name:28s} {t * scale:12.3f} {ratio:>22s}")
    for name, why in (notes or {}).items():
        lines.append(f"  {name:28s} {'-':>12s} {why}")
    return "\n".join(lines)


def _workload_table(title, cases, times):
    notes = {c.name: c.note for c in cases if c.step is None}
    return format_table(title, times, "jax.jit(value_and_grad)", notes=notes)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    ap.add_argument("--no-torch-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch.set_num_threads(N) (default: torch's own choice)")
    ap.add_argument("--profile", action="store_true",
                    help="also cProfile the cache-hit call and print where the time goes")
    ap.add_argument("--only", default="a,b,c,d", help="comma list of sections: a,b,c,d")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    rounds, oh_n, reps = (5, 500, 1) if args.quick else (15, 2000, 3)
    use_torch, use_tc = not args.no_torch, not (args.no_torch or args.no_torch_compile)
    torch_module(use_torch, args.torch_threads)
    print(f"machine: {machine(args.device)}", flush=True)
    if args.device == "cuda" and not tg.cuda.is_available():
        print("SKIP: no GPU visible to jax")
        return 0
    out = {}
    if "a" in only:
        for update, label in ((False, "forward+backward"), (True, "training step (fwd+bwd+SGD)")):
            cases = mlp_cases(args.device, update, use_torch, use_tc)
            times = run_cases(cases, rounds=rounds)
            out[f"mlp {label}"] = times
            print(_workload_table(f"\n(a) MLP 784-512-512-10, batch 128: {label}", cases, times),
                  flush=True)
    if "b" in only:
        cases = transformer_cases(args.device, use_torch, use_tc)
        times = run_cases(cases, rounds=rounds)
        out["transformer"] = times
        print(_workload_table("\n(b) transformer block d=128 h=4 seq=64 batch=8: forward+backward",
                              cases, times), flush=True)
    if "c" in only:
        oh = overhead(n=oh_n, rounds=5 if args.quick else 9, device=args.device)
        out["overhead"] = oh
        print(format_table("\n(c) cache-hit call on x*2+1, 16 elements: forward", oh["forward"],
                           "jax.jit", unit="us", scale=1e6))
        print(format_table("    forward+backward (loss.backward(), read x.grad)",
                           oh["forward+backward"], "jax.jit(value_and_grad)", unit="us", scale=1e6),
              flush=True)
    if "d" in only:
        fc = first_call(reps=reps, use_torch=use_torch, use_torch_compile=use_tc)
        out["first call"] = fc
        notes = {}
        if "torch.compile" not in fc:
            notes["torch.compile"] = f"unavailable: {_TORCH_COMPILE_WHY or _TORCH_WHY or 'skipped'}"
        print(format_table("\n(d) first call of a fresh MLP loss (trace+compile, fwd+bwd)", fc,
                           "jax.jit(value_and_grad)", unit="s", scale=1, notes=notes), flush=True)
    if args.profile:
        for bw in (False, True):
            print(f"\ncProfile of a cache-hit call ({'forward+backward' if bw else 'forward'}), "
                  "us per call: tottime, cumtime, calls per call")
            for tt, ct, nc, where in profile_hit(backward=bw):
                print(f"  {tt:8.2f} {ct:8.2f} {nc:5.1f}  {where}")
    return out


if __name__ == "__main__":
    main()
