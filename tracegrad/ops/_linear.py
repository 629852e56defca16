"""Linear ops and their transposes, registered as pairs.

Many layer ops are linear in their tensor input (average pooling, padding, the gather of a max
pool, convolution in each of its two operands). For such an op ``F`` the VJP is its transpose
``F^T`` -- itself linear, with ``F`` as *its* VJP -- so one pair of registered ops, each the
other's rule, gives first, second and any higher derivative. ``F^T``'s impl is
``jax.linear_transpose`` of ``F``'s impl: XLA gets the same transposed primitive (a padded
convolution, a scatter-add) that jax's own autodiff would emit, and nobody writes it twice.

``F``'s impl is ``impl(x, *aux, **params)``: linear in ``x``; ``aux`` are tensors it does not
differentiate (indices). ``F^T`` takes ``(g, *aux, shape=x.shape, **params)``.
"""
from __future__ import annotations

import jax

from ._registry import Op, register

__all__ = ["linear_pair"]


def linear_pair(name, impl, *, grad_name, t_grad_name, samples=None, t_samples=None,
                linear_params=None, promote=None):
    """Register ``name`` (``impl``) and ``name + "_backward"`` (its transpose); returns both.

    ``linear_params(params)`` gives the params of the purely linear part of ``impl`` (an affine
    op such as a constant pad with a non-zero value is differentiated through its linear part).
    """
    lin = linear_params or (lambda p: p)

    def t_impl(g, *aux, shape, **params):
        p = lin(params)
        f = (lambda x: impl(x, *aux, **p))
        (out,) = jax.linear_transpose(f, jax.ShapeDtypeStruct(tuple(shape), g.dtype))(g)
        return out

    fwd = register(Op(
        name, impl, grad_name=grad_name, promote=promote, samples=samples,
        vjp_all=lambda g, x, *aux, out, **params: (
            transposed.public(g, *aux, shape=x.shape, **lin(params)),) + (None,) * len(aux)))
    transposed = register(Op(
        name + "_backward", t_impl, grad_name=t_grad_name, promote=promote, samples=t_samples,
        vjp_all=lambda gg, g, *aux, out, shape, **params: (fwd.public(gg, *aux, **params),)
        + (None,) * len(aux)))
    fwd.public = lambda x, *aux, **params: fwd(x, *aux, **params)
    transposed.public = lambda g, *aux, shape, **params: transposed(g, *aux, shape=tuple(shape),
                                                                    **params)
    return fwd, transposed
