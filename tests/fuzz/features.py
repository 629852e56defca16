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
    "dim_on_0d": "0-d tensors where PyTorch treats them as one element: dim=0 / dim=-1, "
                 "nonzero, sum_to_size(())",
    "size_one": "size-1 dims in input shapes",
    "broadcast": "binary ops over broadcasting shapes",
    "scalars": "Python numbers as operands (x * 2.5, 2 - x, x ** 3, where(c, x, 0.0))",
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
    "call_no_grad": "the program called under no_grad",
    "enable_grad_inside": "enable_grad inside a program called under no_grad",
    "detach": "detach(), .data, x.detach() * x",
    "nonleaf_inputs": "inputs that are non-leaf tensors (made by an op before the call)",
    "hooks": "register_hook / retain_grad on non-leaf inputs",
    "multi_output": "autograd.grad of several outputs with explicit grad_outputs",
    "retain_graph": "a backward with retain_graph=True, then another through the same graph",
    "second_order": "create_graph=True and a gradient of the gradients",
    "invalid": "injected invalid arguments (both libraries must raise the same type)",
    "alias_no_grad": "a view or alias (x.t(), x.flatten(), x[0], x.detach()) made under no_grad",
    "alpha": "add/sub with alpha= (function and method)",
    "scalar_where": "where(c, 2.0, -1.0): both branches Python numbers",
    "partial_backward": "a backward through only some outputs (inputs it does not reach)",
    "backward_after_free": "backward once more after the graph was freed",
    "inplace_input": "in-place ops on the body's own inputs",
    "inplace_saved": "in-place on a tensor an earlier op saved for backward (backward must raise)",
    "requires_grad_inside": "x.detach().requires_grad_() inside the program",
    "clamp_tensor": "clamp with tensor min / max",
    "std_zero": "std of values with no spread (all equal, or one element)",
    "second_order_kinks": "create_graph through ops the registry marks not twice differentiable "
                          "(relu, abs, clamp, maximum, amax, max, ...)",
    "trivial_views": "t() / .T of a tensor with < 2 dims, flatten() of a 0-d or 1-D tensor, "
                     "flatten(d, d)",
}

# check features: what the comparison looks at (values, dtypes, shapes, errors always)
CHECKS = {
    "grad_fn_name": "grad_fn's class name (eager only: a compiled output's is the compiled node's)",
    "version": "the _version counter of every tensor",
}

KNOWN_OPEN: dict[str, str] = {
    # issue 9 item 1: views do not share storage or autograd metadata with their base
    "inplace_view": "issue 9 item 1: an in-place op through a view is not seen by its base "
                    "(values, gradients, grad_fn: CopySlices)",
    "alias_no_grad": "issue 9 item 1: a view made under no_grad of a tensor that requires grad "
                     "has requires_grad=False (PyTorch: True, a leaf)",
    "trivial_views": "issue 9 item 1: t() of a tensor with < 2 dims returns the input itself "
                     "(PyTorch: a view, TBackward0); flatten() of a 1-D tensor is a reshape "
                     "(PyTorch: the input itself, so a leaf stays a leaf); so is flatten(d, d)",
    "version": "issue 9 item 1: views do not share their base's version counter; compiled "
               "in-place ops do not bump versions",
    # issue 9 item 2
    "dim_on_0d": "issue 9 item 2: dim=0 / dim=-1 on a 0-d tensor raises jax's error; "
                 "nonzero() of a 0-d tensor raises numpy's ValueError; sum_to_size(()) of a 0-d "
                 "tensor returns the input (PyTorch: a new tensor, SumBackward0)",
    "requires_grad_inside": "compiled: requires_grad_() on a fresh tensor inside a compiled "
                            "function is lost (the output has requires_grad=False)",
    # issue 9 item 3
    "invalid": "issue 9 item 3: invalid arguments that PyTorch refuses are accepted, or raise "
               "another type (view of a non-contiguous tensor, outer of 2-D, permute, ...)",
    "scalar_where": "issue 9 item 3: where(c, 2.0, -1.0) is float64 (PyTorch: float32)",
    "alpha": "Tensor.sub / tracegrad.sub take no alpha= (TypeError; PyTorch: x - alpha * y)",
    "clamp_tensor": "clamp(x, min=t) / clamp(x, max=t) with x equal to the bound: tracegrad "
                    "composes maximum/minimum, which split the gradient half and half; PyTorch "
                    "gives all of it to x (a silent wrong gradient, eager and compiled)",
    "std_zero": "std where the result is 0 (one element, or all equal): the gradient is NaN "
                "(PyTorch: 0), a silent wrong gradient",
    "second_order_kinks": "create_graph=True through relu: the first gradient does not require "
                          "grad (PyTorch: it does, ThresholdBackwardBackward0), so a gradient "
                          "of it fails",
    # issue 9 item 4: compiled differs from eager
    "hooks": "autograd.grad w.r.t. a hooked non-leaf and its leaf returns the non-leaf's "
             "gradient after its hook (PyTorch: before it), eager and compiled",
    "partial_backward": "compiled: .grad of an input that the differentiated outputs do not reach "
                        "is zeros (eager and PyTorch: None)",
    "backward_after_free": "compiled: a second backward without retain_graph raises even where "
                           "nothing saved is needed (PyTorch raises only when a freed saved "
                           "tensor is used), and the reverse",
    "inplace_saved": "compiled: an in-place change of a saved tensor raises at the call "
                     "(PyTorch: at backward, and only if backward runs)",
    "inplace_input": "compiled: an in-place op on an input that requires grad (or is given "
                     "a value that does) raises NotImplementedError (eager: works); an in-place "
                     "change of an input before an exception in the body is lost (eager: kept)",
    # issue 9 item 7
    "grad_fn_name": "issue 9 item 7: grad_fn names (MseLossBackward0, TBackward0, ...) and "
                    "classes (OpBackward for ops named by a function)",
}


def select(on=None, off=()):
    """The set of enabled feature and check names: ``on`` (default: all), minus ``off``."""
    every = set(FEATURES) | set(CHECKS)
    chosen = set(every if on is None else on)
    unknown = (chosen | set(off)) - every
    if unknown:
        raise ValueError(f"unknown fuzzer feature(s): {sorted(unknown)} (known: {sorted(every)})")
    return frozenset(chosen - set(off))
