"""``tracegrad.func``: ``grad``, ``value_and_grad`` and ``vjp`` as function transforms
(usable as decorators), compiled through the same pipeline as ``tracegrad.compile``.

Like ``torch.func`` / ``jax.grad``, they differentiate with respect to the arguments named by
``argnums`` whatever their ``requires_grad`` (fresh leaves are made for them), and leave every
``.grad`` untouched. Return conventions follow JAX: ``grad`` -> ``g`` or ``(g, aux)``;
``value_and_grad`` -> ``(value, g)`` or ``((value, aux), g)``; with a tuple ``argnums`` the
gradient is a tuple.
"""
from __future__ import annotations

import functools

import jax

from ._creation import zeros_like as _zeros_like
from ._tensor import Tensor
from ._state import STATE
from .autograd import grad_mode as _gm
from .autograd.engine import grad as _autograd_grad
from .compiler.call import compiled_function

__all__ = ["grad", "value_and_grad", "vjp"]


def _argnums(argnums, nargs, name):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise RuntimeError(f"{name}: argnums must be non-empty")
    for n in nums:
        if not isinstance(n, int):
            raise RuntimeError(f"{name}: argnums must be int or Tuple[int, ...], got {argnums!r}")
        if not -nargs <= n < nargs:
            raise RuntimeError(f"{name}: Got argnums={argnums}, but only {nargs} positional inputs")
    return tuple(n % nargs for n in nums)


def _detach_tree(tree):
    """aux outputs are returned, not differentiated (as in torch.func / jax): no graph."""
    return jax.tree_util.tree_map(lambda t: t.detach() if isinstance(t, Tensor) else t, tree,
                                  is_leaf=lambda t: isinstance(t, Tensor))


def value_and_grad(func, argnums=0, has_aux=False):
    """``f(*args) -> ((value, aux) or value, grads)``; ``f`` must return a scalar tensor.

    Differentiation is certain here, so forward and backward run as one joint program from
    the first call (one XLA compile, one dispatch per call)."""
    compiled = compiled_function(func, differentiate=True)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        nums = _argnums(argnums, len(args), "value_and_grad")
        args = list(args)
        leaves = []
        outer = False
        for n in nums:
            x = args[n]
            if not isinstance(x, Tensor):
                raise RuntimeError(f"value_and_grad: argument {n} must be a Tensor to be "
                                   f"differentiated, got {type(x).__name__}")
            if not x.is_floating_point():
                raise RuntimeError(f"value_and_grad: argument {n} has dtype {x.dtype}; only "
                                   "floating point tensors can be differentiated")
            # under an outer transform (x already requires grad, grad mode on) keep x itself
            # and record the gradient's graph, so grad(grad(f)) composes as in jax/torch.func
            nested = x.requires_grad and STATE.grad_enabled
            outer = outer or nested
            leaf = x if nested else x.detach().requires_grad_(True)
            args[n] = leaf
            leaves.append(leaf)
        with _gm.enable_grad():
            out = compiled(*args, **kwargs)
        aux = None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise RuntimeError("value_and_grad(f, has_aux=True): f must return a (output, aux) "
                                   "tuple")
            out, aux = out
            aux = _detach_tree(aux)
        if not isinstance(out, Tensor):
            raise RuntimeError(f"value_and_grad(f)(*args): Expected f(*args) to return a Tensor, "
                               f"got {type(out)}")
        if out.numel() != 1 or out.ndim != 0:
            dims = out.ndim
            raise RuntimeError(f"value_and_grad(f)(*args): Expected f(*args) to return a scalar "
                               f"Tensor, got tensor with {dims} dims. Maybe you wanted to use the "
                               f"vjp or jacrev APIs instead?")
        grads = _autograd_grad(out, leaves, allow_unused=True, materialize_grads=True,
                               create_graph=outer) \
            if out.requires_grad else tuple(_zeros_like(l) for l in leaves)
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        value = out if outer else out.detach()
        return ((value, aux) if has_aux else value), g

    wrapper.compiled = compiled
    return wrapper


def grad(func, argnums=0, has_aux=False):
    """The gradient of a scalar function (``tracegrad.func.grad(f)(x)``), compiled."""
    vg = value_and_grad(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    wrapper.compiled = vg.compiled
    return wrapper


def vjp(func, *primals, has_aux=False):
    """``(output, vjp_fn)`` with ``vjp_fn(cotangents) -> tuple of gradients per primal``."""
    compiled = compiled_function(func)
    leaves = []
    for i, p in enumerate(primals):
        if not isinstance(p, Tensor):
            raise RuntimeError(f"vjp: primal {i} must be a Tensor, got {type(p).__name__}")
        leaves.append(p.detach().requires_grad_(p.is_floating_point()))
    with _gm.enable_grad():
        out = compiled(*leaves)
    aux = None
    if has_aux:
        out, aux = out
        aux = _detach_tree(aux)
    outs = (out,) if isinstance(out, Tensor) else tuple(out)

    def vjp_fn(*cotangents):
        if len(cotangents) == 1 and not isinstance(out, Tensor) and isinstance(cotangents[0], (tuple, list)):
            cotangents = tuple(cotangents[0])
        if len(cotangents) != len(outs):
            raise RuntimeError(f"vjp_fn: expected {len(outs)} cotangents (one per output), got "
                               f"{len(cotangents)}")
        pairs = [(o, c) for o, c in zip(outs, cotangents) if o.requires_grad]
        diff = [l for l in leaves if l.requires_grad]
        if not pairs:
            return tuple(_zeros_like(l) for l in leaves)
        gs = iter(_autograd_grad([o for o, _ in pairs], diff, [c for _, c in pairs],
                                 retain_graph=True, allow_unused=True, materialize_grads=True))
        return tuple(next(gs) if l.requires_grad else None for l in leaves)

    detached = out.detach() if isinstance(out, Tensor) else type(out)(o.detach() for o in outs)
    return (detached, vjp_fn, aux) if has_aux else (detached, vjp_fn)
