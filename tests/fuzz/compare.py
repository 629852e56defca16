"""Compare a tracegrad observation with torch's: values (dtype-aware tolerances), dtypes,
shapes, requires_grad / is_leaf / grad_fn, ``.grad``, versions and exceptions.

Each difference is a ``Mismatch`` with a *kind* (what differs) and the *op* of the step that
made the tensor, so that disagreements can be classed by op and kind.
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Mismatch", "compare", "TOLERANCE"]

# (rtol, atol) per dtype: float64 programs chain a handful of ops, each correctly rounded
TOLERANCE = {"float64": (1e-7, 1e-9), "float32": (2e-4, 2e-5), "float16": (1e-2, 1e-3),
             "bfloat16": (2e-2, 1e-2)}


@dataclasses.dataclass(frozen=True)
class Mismatch:
    mode: str
    kind: str
    name: str
    op: str
    detail: str

    def __str__(self):
        return f"[{self.mode}] {self.kind} of {self.name} ({self.op}): {self.detail}"


_PRECISION = {"float16": 0, "bfloat16": 0, "float32": 1, "float64": 2}
_BY_PRECISION = {0: "bfloat16", 1: "float32", 2: "float64"}


def _tolerance_dtypes(program, ref):
    """name -> the float dtype whose tolerance its value is compared with: the least precise
    float dtype among the values it was computed from (a float64 result of a float32
    computation carries float32 rounding). Gradients (and every input's .grad) are compared
    with the least precise dtype in the whole program."""
    def prec(name):
        t = ref.tensors.get(name)
        return _PRECISION.get(t["dtype"], 2) if t is not None else 2
    low = {}
    for inp in program.inputs:
        for n in inp.names():
            low[n] = prec(n)
    for s in program.body:
        source = min([low.get(r, 2) for r in s.reads], default=2)
        for d in s.defines:
            low[d] = min(prec(d), source)
        for m in s.mutates:
            low[m] = min(low.get(m, 2), source)
    overall = min(low.values(), default=2)
    for s in program.tail_steps():
        for d in s.defines:
            low[d] = overall
    return {n: _BY_PRECISION[p] for n, p in low.items()}, _BY_PRECISION[overall]


def _close(a, b, dtype):
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "biu" or b.dtype.kind in "biu":
        return np.array_equal(a, b)
    rtol, atol = TOLERANCE.get(dtype, (1e-7, 1e-9))
    a, b = a.astype(np.float64), b.astype(np.float64)
    return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
                and np.array_equal(np.isnan(a), np.isnan(b))
                and np.array_equal(np.isposinf(a), np.isposinf(b)))


def _least_precise(a, b):
    return a if _PRECISION.get(a, 2) <= _PRECISION.get(b, 2) else b


def _show(a):
    return np.array2string(np.asarray(a), precision=6, threshold=12).replace("\n", "")


def _op_of(program, name):
    """The label of the step that made ``name`` (for an input: the last step that mutated
    it, else "input"; for a gradient: "backward")."""
    for s in program.body:
        if name in s.defines:
            return s.label
    for s in reversed(program.body):
        if name in s.mutates:
            return s.label
    if any(name in s.defines for s in program.tail_steps()):
        return "backward"
    return "input"


def compare(program, ref, got, checks):
    """Mismatches of observation ``got`` (tracegrad) against ``ref`` (torch). ``checks`` is
    the enabled set from ``features.select`` ("grad_fn_name", "version")."""
    out = []
    mode = got.mode

    def add(kind, name, detail, op=None):
        out.append(Mismatch(mode, kind, name, op or _op_of(program, name), detail))

    e_ref, e_got = ref.error, got.error
    if e_got is not None and e_got.module.split(".")[0] in ("jax", "jaxlib"):
        add("error:jax", "-", f"a jax exception reached the user: {e_got}",
            op=_error_op(program, e_got, e_ref))
    if (e_ref is None) != (e_got is None):
        if e_ref is not None:
            add("error:not-raised", "-", f"torch raised {e_ref}; tracegrad did not",
                op=_error_op(program, e_ref, None))
        else:
            add("error:raised", "-", f"tracegrad raised {e_got}; torch did not",
                op=_error_op(program, e_got, None))
        return out  # what follows the exception is not comparable
    if e_ref is not None:
        if e_ref.type != e_got.type:
            add("error:type", "-", f"torch: {e_ref}; tracegrad: {e_got}",
                op=_error_op(program, e_ref, e_got))
        elif _place(e_ref, mode) != _place(e_got, mode):
            add("error:where", "-", f"torch: {e_ref}; tracegrad: {e_got}",
                op=_error_op(program, e_ref, e_got))
            return out  # the runs stopped at different points
    tol, tol_grad = _tolerance_dtypes(program, ref)
    for name, r in ref.tensors.items():
        g = got.tensors.get(name)
        if g is None:
            add("missing", name, "torch has this tensor; tracegrad's run does not")
            continue
        out += _compare_tensor(program, mode, name, r, g, checks, tol.get(name, r["dtype"]), tol_grad)
    return out


def _place(error, mode):
    """Where an error was raised, as precisely as ``mode`` can say: the step in eager runs;
    "forward" (the body or the call) or the tail step in compiled runs."""
    section, index = error.where
    if mode != "eager" and section in ("body", "call"):
        return ("forward", None)
    return (section, index)


def _error_op(program, e, other):
    """The label of the body step that raised; for an error raised by the call as a whole
    (while tracing or running a compiled body) or by the tail, the error's type and the start
    of its message, which says more about the cause than the step does."""
    for err in (e, other):
        if err is not None and err.where[0] == "body" and err.where[1] is not None:
            if err.where[1] < len(program.body):
                return program.body[err.where[1]].label
    err = other if other is not None else e
    first = err.message.strip().split("\n")[0]
    return f"{err.where[0]}: {err.type}: {' '.join(first.split()[:8])}"


def _compare_tensor(program, mode, name, r, g, checks, tol_dtype, tol_grad):
    out = []
    op = _op_of(program, name)
    prefix = "backward:" if op == "backward" else ""  # a tensor made by the tail (a gradient)

    def add(kind, detail):
        out.append(Mismatch(mode, prefix + kind, name, op, detail))

    if r["shape"] != g["shape"]:
        add("shape", f"torch {r['shape']}, tracegrad {g['shape']}")
    elif r["dtype"] != g["dtype"]:
        add("dtype", f"torch {r['dtype']}, tracegrad {g['dtype']}")
    elif not _close(r["value"], g["value"], _least_precise(r["dtype"], tol_dtype)):
        add("value", f"torch {_show(r['value'])}, tracegrad {_show(g['value'])}")
    for flag in ("requires_grad", "is_leaf"):
        if r[flag] != g[flag]:
            add(flag, f"torch {r[flag]}, tracegrad {g[flag]}")
    if (r["grad_fn"] is None) != (g["grad_fn"] is None):
        add("grad_fn", f"torch {r['grad_fn']}, tracegrad {g['grad_fn']}")
    elif "grad_fn_name" in checks and mode == "eager" and r["grad_fn"] != g["grad_fn"]:
        same_name = r["grad_fn"] == g["grad_fn"].split(" (class ")[0]
        add("grad_fn_class" if same_name else "grad_fn_name",
            f"torch {r['grad_fn']}, tracegrad {g['grad_fn']}")
    if "version" in checks and not prefix and r["version"] != g["version"]:
        add("version", f"torch {r['version']}, tracegrad {g['version']}")
    if (r["grad"] is None) != (g["grad"] is None):
        add("grad:none", f"torch .grad {'None' if r['grad'] is None else _show(r['grad'])}, "
                         f"tracegrad {'None' if g['grad'] is None else _show(g['grad'])}")
    elif r["grad"] is not None:
        if r["grad_dtype"] != g["grad_dtype"]:
            add("grad:dtype", f"torch {r['grad_dtype']}, tracegrad {g['grad_dtype']}")
        elif not _close(r["grad"], g["grad"], _least_precise(r["grad_dtype"], tol_grad)):
            add("grad", f"torch {_show(r['grad'])}, tracegrad {_show(g['grad'])}")
    return out
