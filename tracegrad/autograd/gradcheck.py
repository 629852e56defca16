"""``gradcheck`` and ``gradgradcheck``: compare analytical gradients (vector-Jacobian products
from the engine) with numerical ones (central finite differences), as PyTorch does.

    >>> import tracegrad as torch
    >>> x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    >>> torch.autograd.gradcheck(torch.sin, (x,))
    True

Slow mode (the default) builds both Jacobians in full: the numerical one column by column
(two calls of ``func`` per input element, the element moved by ``+-eps``), the analytical one
row by row (one backward per output element, with a one-hot ``grad_output``). Both are laid
out as PyTorch lays them out in its messages: ``(input numel, output numel)``.

``fast_mode=True`` compares one number per (input, output) pair instead: ``v^T J u`` for
random unit vectors ``u`` (input side) and ``v`` (output side), with ``J u`` from one central
difference along ``u`` and ``v^T J`` from one backward. On a mismatch it recomputes the slow
Jacobians of the failing pair for the message.

Finite differences need concrete values, so this module reads arrays (numpy) freely; it is a
testing tool and never runs inside a traced program.
"""
from __future__ import annotations

import warnings

import jax
import numpy as np

from .. import _creation as C
from .. import _dtype as D
from .._device import CPU
from .._graph import Node, gradient_edge
from .._tensor import Tensor
from .engine import grad

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError", "get_numerical_jacobian",
           "get_analytical_jacobian"]


class GradcheckError(RuntimeError):
    """Error raised by :func:`gradcheck` and :func:`gradgradcheck`."""


def _is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def _as_tuple(x):
    if isinstance(x, tuple):
        return x
    if isinstance(x, list):
        return tuple(x)
    return (x,)


def _differentiable_outputs(x):
    return tuple(o for o in _as_tuple(x) if o.requires_grad)


def _np(t) -> np.ndarray:
    return np.asarray(t._data.value)


def _to_tensor(a: np.ndarray, device=None):
    """A numpy array as a tracegrad tensor (no grad) on ``device``."""
    dev = CPU if device is None else device
    return Tensor._make(jax.device_put(np.array(a, copy=True), dev.jax_device()), dev)


def _diff_inputs(inputs):
    """(index, tensor) of each input that requires grad."""
    return [(i, t) for i, t in enumerate(inputs) if _is_tensor(t) and t.requires_grad]


# ----------------------------------------------------------------------------- input checks

def _check_inputs(inputs):
    any_rg = False
    for idx, inp in enumerate(inputs):
        if _is_tensor(inp) and inp.requires_grad:
            if inp.dtype.name != "float64":
                warnings.warn(
                    f"Input #{idx} requires gradient and is not a double precision floating point "
                    "or complex. This check will likely fail if all the inputs are not of double "
                    "precision floating point or complex. ", stacklevel=4)
            any_rg = True
    if not any_rg:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but "
                         "none of them have requires_grad=True.")


def _check_same(out1, out2, eps, idx=None):
    on = f"on index {idx} " if idx is not None else ""
    if out1.shape != out2.shape:
        raise AssertionError(f"Expected `func` to return outputs with the same shape when inputs "
                             f"are perturbed {on}by {eps}, but got: shapes {out1.shape} and "
                             f"{out2.shape}.")
    if out1.dtype != out2.dtype:
        raise AssertionError(f"Expected `func` to return outputs with the same dtype when inputs "
                             f"are perturbed {on}by {eps}, but got: dtypes {out1.dtype} and "
                             f"{out2.dtype}.")


# ----------------------------------------------------------------------------- numerical side

def _eval_outputs(func, inputs):
    """Call ``func`` and copy each output's value out (numpy), as PyTorch clones them."""
    return [np.array(_np(o)) for o in _as_tuple(func(*inputs))]


def _perturbed_diff(func, inputs, x, delta, norm, idx=None, eps=None):
    """Central difference of every output of ``func`` when ``x`` moves by ``+-delta``
    (a numpy array of x's shape), divided by ``2 * norm``; flat numpy arrays.

    ``x``'s storage is changed in place and restored (without a version bump, like PyTorch's
    change through ``x.data``), so a function that reads ``x`` through an alias sees it too."""
    data = x._data
    orig = data.value
    sharding = orig.sharding
    host = np.asarray(orig)
    try:
        data.value = jax.device_put((host - delta).astype(host.dtype), sharding)
        outa = _eval_outputs(func, inputs)
        data.value = jax.device_put((host + delta).astype(host.dtype), sharding)
        outb = _eval_outputs(func, inputs)
    finally:
        data.value = orig
    res = []
    for a, b in zip(outa, outb):
        _check_same(a, b, eps if eps is not None else norm, idx)
        if a.dtype == np.bool_:
            a, b = a.astype(np.int64), b.astype(np.int64)
        res.append(((b - a) / (2 * norm)).reshape(-1))
    return res


def _numerical_jacobian(func, inputs, outputs, eps):
    """``jac[j][i]``: numerical Jacobian of output ``i`` w.r.t. differentiable input ``j``,
    shape ``(x.numel(), out.numel())``, in the output's dtype."""
    jacs = []
    for _, x in _diff_inputs(inputs):
        n = x.numel()
        cols = []
        host = _np(x)
        for k in range(n):
            delta = np.zeros(host.shape, dtype=host.dtype)
            delta.reshape(-1)[k] = eps
            cols.append(_perturbed_diff(func, inputs, x, delta, eps,
                                        idx=np.unravel_index(k, host.shape) if host.ndim else (),
                                        eps=eps))
        per_out = []
        for i, o in enumerate(outputs):
            m = int(np.prod(o.shape)) if o.shape else 1
            dt = o.dtype if np.issubdtype(o.dtype, np.floating) else np.float64
            J = np.zeros((n, m), dtype=dt)
            for k in range(n):
                J[k] = cols[k][i]
            per_out.append(J)
        jacs.append(per_out)
    return jacs


# ----------------------------------------------------------------------------- analytical side

def _vjp(output, diff_inputs, grad_output):
    return grad(output, diff_inputs, grad_output, retain_graph=True, allow_unused=True)


def _one_hot(output, k):
    a = np.zeros(tuple(output.shape), dtype=output.dtype.np)
    a.reshape(-1)[k] = 1
    return _to_tensor(a, output.device)


def _analytical_rows(output, diff_inputs):
    """``rows[j][k]``: gradient w.r.t. input ``j`` for the one-hot grad_output at output
    element ``k`` (a numpy array, or None when the input is unused)."""
    rows = [[] for _ in diff_inputs]
    for k in range(output.numel()):
        gs = _vjp(output, diff_inputs, _one_hot(output, k))
        for j, g in enumerate(gs):
            rows[j].append(None if g is None else (tuple(g.shape), g.dtype, np.array(_np(g))))
    return rows


def _stack(rows, diff_inputs, n_out):
    """Assemble rows into ``(x.numel(), n_out)`` Jacobians in each input's dtype; also
    whether every gradient had its input's size and dtype."""
    jacs, sizes_ok, types_ok = [], True, True
    for x, per_k in zip(diff_inputs, rows):
        J = np.zeros((x.numel(), n_out), dtype=x.dtype.np)
        for k, entry in enumerate(per_k):
            if entry is None:
                continue
            shape, dtype, value = entry
            if shape != tuple(x.shape):
                sizes_ok = False
                continue
            if dtype is not x.dtype:
                types_ok = False
            J[:, k] = value.reshape(-1)
        jacs.append(J)
    return jacs, sizes_ok, types_ok


FAILED_NONDET_MSG = """

NOTE: If your op relies on non-deterministic operations, this failure might be expected:
call gradcheck/gradgradcheck with `nondet_tol=<tol>` as a keyword argument.
"""


def _analytical_jacobian(inputs, output, nondet_tol, check_grad_dtypes, v=None):
    """Analytical Jacobians of ``output`` w.r.t. each differentiable input (twice, to check
    that backward is reentrant). With ``v`` (fast mode), one row: ``v^T J``."""
    diff = [t for _, t in _diff_inputs(inputs)]
    if v is None:
        rows1 = _analytical_rows(output, diff)
        rows2 = _analytical_rows(output, diff)
        n = output.numel()
    else:
        vt = _to_tensor(v.reshape(tuple(output.shape)).astype(output.dtype.np), output.device)
        rows1 = [[None if g is None else (tuple(g.shape), g.dtype, np.array(_np(g)))]
                 for g in _vjp(output, diff, vt)]
        rows2 = [[None if g is None else (tuple(g.shape), g.dtype, np.array(_np(g)))]
                 for g in _vjp(output, diff, vt)]
        n = 1
    j1, sizes_ok, types_ok = _stack(rows1, diff, n)
    j2, _, _ = _stack(rows2, diff, n)
    reentrant = all(a.size == 0 or np.max(np.abs(a - b)) <= nondet_tol for a, b in zip(j1, j2))
    if not types_ok and check_grad_dtypes:
        raise GradcheckError("Gradient has dtype mismatch")
    if not sizes_ok:
        raise GradcheckError("Analytical gradient has incorrect size")
    if not reentrant:
        raise GradcheckError(
            "Backward is not reentrant, i.e., running backward with same input and grad_output "
            "multiple times gives different values, although analytical gradient matches "
            f"numerical gradient.The tolerance for nondeterminism was {nondet_tol}."
            + FAILED_NONDET_MSG)
    return j1


# ----------------------------------------------------------------------------- comparison

def _allclose(a, n, rtol, atol) -> bool:
    dt = np.promote_types(a.dtype, n.dtype)
    a, n = a.astype(dt), n.astype(dt)
    return bool(np.all(np.abs(a - n) <= atol + rtol * np.abs(n)))


def _fmt(a):
    """A Jacobian as PyTorch's message prints it (a tensor repr; scalars as plain floats)."""
    if np.ndim(a) == 0:
        return repr(float(a))
    return repr(_to_tensor(np.asarray(a)))


def _notallclose_msg(a, n, output_idx, input_idx) -> str:
    return (f"Jacobian mismatch for output {output_idx:d} with respect to input {input_idx:d},\n"
            f"numerical:{_fmt(n)}\nanalytical:{_fmt(a)}\n")


def _check_no_differentiable_outputs(func, inputs, func_out, eps):
    outs = [np.asarray(_np(o)) for o in _as_tuple(func_out)]
    for per_out in _numerical_jacobian(func, inputs, outs, eps):
        for J in per_out:
            if np.count_nonzero(J) > 0:
                raise GradcheckError("Numerical gradient for function expected to be zero")
    return True


def _slow_gradcheck(func, func_out, inputs, outputs, eps, rtol, atol, check_grad_dtypes,
                    nondet_tol):
    func_out = _as_tuple(func_out)
    if not outputs:
        return _check_no_differentiable_outputs(func, inputs, func_out, eps)
    numerical = _numerical_jacobian(func, inputs, [np.asarray(_np(o)) for o in func_out], eps)
    # numerical[j][i] -> by output, keeping only outputs that require grad
    by_out = [[numerical[j][i] for j in range(len(numerical))]
              for i, o in enumerate(func_out) if o.requires_grad]
    for i, o in enumerate(outputs):
        analytical = _analytical_jacobian(inputs, o, nondet_tol, check_grad_dtypes)
        for j, (a, n) in enumerate(zip(analytical, by_out[i])):
            if not _allclose(a, n, rtol, atol):
                raise GradcheckError(_notallclose_msg(a, n, i, j))
    return True


def _rand_unit(rng, n, dtype):
    v = rng.random(n)
    v /= np.linalg.norm(v) if n else 1.0
    return v.astype(dtype)


FAST_FAIL_SLOW_OK_MSG = """
Fast gradcheck failed but element-wise differences are small. This means that the
test might've passed in slow_mode!

If you are calling gradcheck/gradgradcheck yourself, call it with `fast_mode=False`.
""".strip()


def _slow_pair_msg(func, inputs, outputs, input_idx, output_idx, rtol, atol, eps):
    outs_np = [np.asarray(_np(o)) for o in outputs]
    n = _numerical_jacobian(func, inputs, outs_np, eps)[input_idx][output_idx]
    a = _analytical_jacobian(inputs, outputs[output_idx], float("inf"), False)[input_idx]
    diff = float(np.max(np.abs(n - a))) if n.size else 0.0
    msg = ("\nThe above quantities relating the numerical and analytical jacobians are computed \n"
           "in fast mode. See: https://github.com/pytorch/pytorch/issues/53876 for more "
           "background \nabout fast mode. Below, we recompute numerical and analytical jacobians "
           "in slow mode:\n\n"
           f"Numerical:\n {_fmt(n)}\n"
           f"Analytical:\n{_fmt(a)}\n\n"
           f"The max per-element difference (slow mode) is: {diff}.\n")
    if _allclose(a, n, rtol, atol):
        msg += FAST_FAIL_SLOW_OK_MSG
    return msg


def _fast_gradcheck(func, func_out, inputs, outputs, eps, rtol, atol, check_grad_dtypes,
                    nondet_tol):
    # a private generator with a fixed seed: deterministic, and the user's RNG is untouched
    rng = np.random.default_rng(67280421310721)
    diff = _diff_inputs(inputs)
    all_u = [_rand_unit(rng, x.numel(), x.dtype.np) for _, x in diff]
    all_v = [_rand_unit(rng, o.numel(), o.dtype.np) for o in outputs]
    func_out = _as_tuple(func_out)

    # numerical: J u along each input's direction u (one central difference), then v . (J u)
    numerical = []
    for (_, x), u in zip(diff, all_u):
        delta = (u * eps).reshape(tuple(x.shape)).astype(x.dtype.np)
        jus = _perturbed_diff(func, inputs, x, delta, eps, eps=eps)
        if not outputs:
            for ju in jus:
                if ju.size and np.max(np.abs(ju)) > nondet_tol:
                    raise GradcheckError("Numerical gradient for function expected to be zero")
            continue
        jus = [ju for ju, o in zip(jus, func_out) if o.requires_grad]
        numerical.append([np.dot(v.astype(ju.dtype), ju) for v, ju in zip(all_v, jus)])
    if not outputs:
        return True

    # analytical: v^T J for each output (one backward), then (v^T J) . u
    analytical = []
    for o, v in zip(outputs, all_v):
        vjs = _analytical_jacobian(inputs, o, nondet_tol, check_grad_dtypes, v=v)
        analytical.append([np.dot(vj[:, 0], u) for vj, u in zip(vjs, all_u)])

    for i, per_input in enumerate(numerical):
        for j, n in enumerate(per_input):
            a = analytical[j][i]
            tol = atol * float(all_u[i].sum()) * float(all_v[j].sum())
            if not _allclose(np.asarray(a), np.asarray(n), rtol, tol):
                raise GradcheckError(_notallclose_msg(a, n, j, i)
                                     + _slow_pair_msg(func, inputs, outputs, i, j, rtol, atol, eps))
    return True


# ----------------------------------------------------------------------------- extra checks

def _test_backward_mul_by_grad_output(outputs, inputs):
    diff = [t for _, t in _diff_inputs(inputs)]
    if not diff:
        raise GradcheckError("no Tensors requiring grad found in input")
    grads = grad(outputs, diff, [C.zeros_like(o) for o in outputs], allow_unused=True)
    for gi, di in zip(grads, diff):
        if gi is None:
            continue
        if not np.all(_np(gi) == 0):
            raise GradcheckError("backward not multiplied by grad_output")
        if gi.dtype is not di.dtype:
            raise GradcheckError("grad is incorrect type")
        if gi.device != di.device:
            raise GradcheckError("grad is incorrect device")
        if tuple(gi.shape) != tuple(di.shape):
            raise GradcheckError("grad is incorrect size")
    return True


class UndefinedGradBackward(Node):
    """Passes no gradient on (PyTorch's ``UndefinedGrad``): nodes below it receive ``None``."""

    def apply(self, grad_outputs):
        return [None]


def _undefined_grad(o):
    t = o.detach()
    t.grad_fn = UndefinedGradBackward((gradient_edge(o),))
    t._rg = True
    return t


def _test_undefined_backward_mode(func, outputs, inputs):
    diff = [t for _, t in _diff_inputs(inputs)]
    if not diff:
        raise GradcheckError("no Tensors requiring grad found in input")

    def warn_bc_breaking():
        warnings.warn(
            "Backwards compatibility: New undefined gradient support checking feature is enabled "
            "by default, but it may break existing callers of this function. If this is true for "
            'you, you can call this function with "check_undefined_grad=False" to disable the '
            "feature", stacklevel=4)

    def check(outs):
        try:
            grads = grad(outs, diff, [C.zeros_like(o) for o in outs], allow_unused=True)
        except RuntimeError as e:
            warn_bc_breaking()
            raise GradcheckError(
                "Expected backward function to handle undefined output grads (a None gradient "
                "reaching a backward must be treated as zeros)") from e
        for gi in grads:
            if gi is not None and not np.all(_np(gi) == 0):
                warn_bc_breaking()
                raise GradcheckError(
                    "Expected all input grads to be undefined or zero when all output grads are "
                    "undefined or zero.")
        return True

    to_check = [[_undefined_grad(o) for o in _differentiable_outputs(func(*inputs))]]
    if len(to_check[0]) > 1:  # undefined one at a time must work as well
        for k in range(len(outputs)):
            outs = _differentiable_outputs(func(*inputs))
            to_check.append([_undefined_grad(o) if idx == k else o for idx, o in enumerate(outs)])
    return all(check(outs) for outs in to_check)


# ----------------------------------------------------------------------------- public API

def _unsupported(flag, what):
    raise NotImplementedError(f"gradcheck: {flag}=True is not supported: {what}")


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
              check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
              check_forward_ad: bool = False, check_backward_ad: bool = True,
              fast_mode: bool = False, masked=None) -> bool:
    r"""Check the gradients of ``func`` at ``inputs`` against finite differences.

    Each input tensor with ``requires_grad=True`` is checked (use float64: with float32 the
    finite differences are too coarse, and a warning says so). For every output ``i`` and
    input ``j``, the numerical Jacobian (central differences with step ``eps``) and the
    analytical one (from ``autograd.grad``) must satisfy
    ``|analytical - numerical| <= atol + rtol * |numerical|`` elementwise.

    Also checked, as in PyTorch: backward is reentrant (same result twice, within
    ``nondet_tol``), gradients have their input's size (and dtype with
    ``check_grad_dtypes``), a zero ``grad_output`` gives zero gradients, and (with
    ``check_undefined_grad``) backward copes with undefined (``None``) output gradients.

    Returns ``True``; on a failure raises :class:`GradcheckError` (a ``RuntimeError``)
    naming the output/input pair with both Jacobians, or returns ``False`` when
    ``raise_exception=False``.

    ``check_forward_ad``, ``check_batched_grad`` and ``check_batched_forward_grad`` need
    forward-mode AD or vmap, which tracegrad does not have: ``True`` raises
    ``NotImplementedError``. ``masked`` is accepted (tracegrad has dense tensors only).

    >>> import tracegrad as torch
    >>> x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    >>> torch.autograd.gradcheck(lambda t: (t * t).sum(), x)
    True
    """
    if not (check_forward_ad or check_backward_ad):
        raise AssertionError("Expected at least one of check_forward_ad or check_backward_ad "
                             "to be True")
    if check_batched_grad and not check_backward_ad:
        raise AssertionError("Setting check_batched_grad=True requires check_backward_ad to be "
                             "True")
    if check_batched_forward_grad and not check_forward_ad:
        raise AssertionError("Setting check_batched_forward_grad=True requires check_forward_ad "
                             "to be True")
    if check_forward_ad:
        _unsupported("check_forward_ad", "tracegrad has no forward-mode AD")
    if check_batched_grad or check_batched_forward_grad:
        _unsupported("check_batched_grad", "tracegrad has no vmap over backward")
    try:
        return _gradcheck_helper(func, inputs, eps, atol, rtol, nondet_tol, check_undefined_grad,
                                 check_grad_dtypes, fast_mode)
    except GradcheckError:
        if raise_exception:
            raise
        return False


def _gradcheck_helper(func, inputs, eps, atol, rtol, nondet_tol, check_undefined_grad,
                      check_grad_dtypes, fast_mode):
    inputs = _as_tuple(inputs)
    _check_inputs(inputs)
    func_out = func(*inputs)
    outputs = _differentiable_outputs(func_out)
    check = _fast_gradcheck if fast_mode else _slow_gradcheck
    check(func, func_out, inputs, outputs, eps, rtol, atol, check_grad_dtypes, nondet_tol)
    _test_backward_mul_by_grad_output(outputs, inputs)
    if check_undefined_grad:
        _test_undefined_backward_mode(func, outputs, inputs)
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False,
                  raise_exception: bool = True, nondet_tol: float = 0.0,
                  check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_fwd_over_rev: bool = False,
                  check_rev_over_rev: bool = True, fast_mode: bool = False,
                  masked: bool = False) -> bool:
    r"""Check second derivatives: ``gradcheck`` of the function
    ``(inputs, grad_outputs) -> autograd.grad(func(inputs), inputs, grad_outputs,
    create_graph=True)``.

    So the backward of ``func`` must itself be differentiable, with respect to the inputs
    and to ``grad_outputs`` (random in ``[-1, 1]``, requiring grad, when not given). A
    ``Function`` whose ``backward`` uses values computed in ``forward`` without history
    fails here: see ``docs/gradcheck.md``.

    ``gen_non_contig_grad_outputs`` is accepted and ignored (tracegrad tensors have no
    strides); ``check_fwd_over_rev`` and ``check_batched_grad`` raise
    ``NotImplementedError`` when ``True``.

    >>> import tracegrad as torch
    >>> x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    >>> torch.autograd.gradgradcheck(lambda t: t.sin() * t, (x,))
    True
    """
    if not (check_fwd_over_rev or check_rev_over_rev):
        raise AssertionError("Expected at least one of check_fwd_over_rev or check_rev_over_rev "
                             "to be True")
    if check_undefined_grad and not check_rev_over_rev:
        raise AssertionError("Setting check_undefined_grad=True requires check_rev_over_rev to "
                             "be True")
    if check_batched_grad and not check_rev_over_rev:
        raise AssertionError("Setting check_batched_grad=True requires check_rev_over_rev to be "
                             "True")
    inputs = _as_tuple(inputs)
    if grad_outputs is None:
        outs = _differentiable_outputs(func(*inputs))
        grad_outputs = tuple(
            (C.rand(tuple(o.shape), dtype=o.dtype if o.dtype.category == D.FLOATING else None,
                    device=o.device) * 2 - 1).requires_grad_(True)
            for o in outs)
    else:
        grad_outputs = _as_tuple(grad_outputs)
    num_outputs = len(grad_outputs)
    diff_in = {i for i, x in enumerate(inputs) if _is_tensor(x) and x.requires_grad}
    diff_go = {i for i, x in enumerate(grad_outputs) if x.requires_grad}

    def new_func(*args):
        input_args = tuple(x.requires_grad_() if i in diff_in else x
                           for i, x in enumerate(args[:-num_outputs]))
        outputs = _differentiable_outputs(func(*input_args))
        gos = tuple(x.requires_grad_() if i in diff_go else x
                    for i, x in enumerate(args[-num_outputs:]))
        diff_input_args = tuple(x for i, x in enumerate(input_args) if i in diff_in)
        grad_inputs = grad(outputs, diff_input_args, gos, create_graph=True, allow_unused=True)
        return tuple(g for g in grad_inputs if g is not None)

    return gradcheck(new_func, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol,
                     check_undefined_grad=check_undefined_grad,
                     check_grad_dtypes=check_grad_dtypes, check_batched_grad=check_batched_grad,
                     fast_mode=fast_mode, check_forward_ad=check_fwd_over_rev,
                     check_backward_ad=check_rev_over_rev, masked=masked)


# ----------------------------------------------------------------------------- helpers kept from PyTorch

def get_numerical_jacobian(fn, inputs, target=None, eps=1e-3, grad_out=1.0):
    """Numerical Jacobians of ``fn(inputs)`` (first output) w.r.t. each differentiable input,
    as tensors of shape ``(input numel, output numel)`` (deprecated in PyTorch)."""
    if grad_out != 1.0:
        raise ValueError("Expected grad_out to be 1.0. get_numerical_jacobian no longer supports "
                         "values of grad_out != 1.0.")
    if target is not None:
        raise NotImplementedError("get_numerical_jacobian: target= is not supported")
    inputs = _as_tuple(inputs)
    fn1 = lambda *a: fn(a)  # noqa: E731
    outs = [np.asarray(_np(o)) for o in _as_tuple(fn1(*inputs))]
    return tuple(_to_tensor(per_out[0]) for per_out in _numerical_jacobian(fn1, inputs, outs, eps))


def get_analytical_jacobian(inputs, output, nondet_tol=0.0, grad_out=1.0):
    """``(jacobians, reentrant, correct_grad_sizes, correct_grad_types)`` of ``output`` w.r.t.
    each differentiable input (deprecated in PyTorch)."""
    if grad_out != 1.0:
        raise ValueError("Expected grad_out to be 1.0. get_analytical_jacobian no longer "
                         "supports values of grad_out != 1.0.")
    inputs = _as_tuple(inputs)
    diff = [t for _, t in _diff_inputs(inputs)]
    j1, sizes_ok, types_ok = _stack(_analytical_rows(output, diff), diff, output.numel())
    j2, _, _ = _stack(_analytical_rows(output, diff), diff, output.numel())
    reentrant = all(a.size == 0 or np.max(np.abs(a - b)) <= nondet_tol for a, b in zip(j1, j2))
    return tuple(_to_tensor(j) for j in j1), reentrant, sizes_ok, types_ok
