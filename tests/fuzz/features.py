"""The feature classes the fuzzer can switch on and off, and the ones known to disagree today.

A *feature* is a family of program constructs (the generator draws them only when the
feature is on) or a family of checks (the comparison makes them only when it is on).
``KNOWN_OPEN`` is the one list of features that currently disagree with PyTorch, each with
the reason (the issue item it belongs to); the CI slice runs with them off, and
``test_known.py`` pins each as a strict xfail. When a fix lands, take its feature out of
``KNOWN_OPEN`` and un-xfail its test.
"""
from __future__ import annotations

__all__ = ["FEATURES", "KNOWN_OPEN", "CHECKS", "select"]

# construct features: what the generator may draw
FEATURES = {
    "zero_dim": "0-d tensors (inputs of shape (), full reductions, scalar indexing)",
    "dim_on_0d": "a dim argument (0 or -1) passed to a 0-d tensor",
    "size_one": "size-1 dims in input shapes",
    "broadcast": "binary ops over broadcasting shapes",
    "scalars": "Python numbers as operands (x * 2.5, 2 - x, x ** 3, where(c, 2.0, -1.0))",
    "ties": "input values on a small grid: exact ties, zeros, kinks at bounds",
    "float32": "float32 inputs (default dtype) next to float64",
    "mixed_dtype": "binary ops and matmuls whose operands have different dtypes",
    "integer": "int64 and bool tensors (comparisons, masks, integer arithmetic)",
    "reductions": "sum/mean/amax/amin/max/min/argmax/argmin/var/std/norm/logsumexp/softmax",
    "shape_ops": "reshape, view, flatten, permute, transpose, squeeze, expand, cat, stack, split",
    "views": "reading views of tensors (basic indexing, view, transpose, expand, narrow, ...)",
    "indexing_basic": "x[int], x[a:b:c], x[None], x[..., k]",
    "indexing_advanced": "x[list], x[int tensor], x[bool mask], index_select, gather",
    "setitem": "x[index] = value on a non-leaf copy",
    "inplace": "in-place ops (mul_, add_, clamp_, copy_, fill_, ...) on non-view tensors",
    "inplace_view": "in-place ops through a view (x[0].mul_(2), x.view(-1).add_(1), x.t().fill_)",
    "matmul": "matmul/mm/bmm/mv/dot/outer/@ and F.linear",
    "nn_functional": "F.relu, F.softmax, F.mse_loss, F.cross_entropy, F.nll_loss",
    "no_grad": "no_grad / set_grad_enabled(False) blocks inside the program",
    "enable_grad_inside": "enable_grad inside a program called under no_grad",
    "detach": "detach(), detach().requires_grad_(), .data",
    "nonleaf_inputs": "inputs that are non-leaf tensors (made by an op before the call)",
    "hooks": "register_hook / retain_grad on non-leaf inputs",
    "multi_output": "autograd.grad of several outputs with explicit grad_outputs",
    "retain_graph": "backward twice with retain_graph=True, then once more (may raise)",
    "second_order": "create_graph=True and a gradient of the gradients",
    "invalid": "injected invalid arguments (both libraries must raise the same type)",
}

# check features: what the comparison looks at (values, dtypes, shapes, errors always)
CHECKS = {
    "grad_fn_name": "grad_fn's class name (eager only: a compiled output's is the compiled node's)",
    "version": "the _version counter of every tensor",
}

KNOWN_OPEN: dict[str, str] = {}


def select(on=None, off=()):
    """The set of enabled feature and check names: ``on`` (default: all), minus ``off``."""
    every = set(FEATURES) | set(CHECKS)
    chosen = set(every if on is None else on)
    unknown = (chosen | set(off)) - every
    if unknown:
        raise ValueError(f"unknown fuzzer feature(s): {sorted(unknown)} (known: {sorted(every)})")
    return frozenset(chosen - set(off))
