"""Matrix products: matmul (batched, broadcasting, 1-D cases), mm, bmm, mv, dot, outer."""
from __future__ import annotations

import jax.numpy as jnp

from ._registry import Op, Sample, apply, register
from .shape import mT, squeeze, unsqueeze

__all__ = ["bmm", "dot", "matmul", "mm", "mv", "outer"]


def _as_mats(g, x, y):
    # Treat 1-D operands as matrices (numpy's rule), so one pair of formulas serves all cases.
    x2 = unsqueeze(x, 0) if x.ndim == 1 else x
    y2 = unsqueeze(y, -1) if y.ndim == 1 else y
    if x.ndim == 1:
        g = unsqueeze(g, -2 if y.ndim != 1 else 0)
    if y.ndim == 1:
        g = unsqueeze(g, -1)
    return g, x2, y2


def _dx(g, x, y):
    g, x2, y2 = _as_mats(g, x, y)
    gx = g @ mT(y2)
    return squeeze(gx, -2) if x.ndim == 1 else gx  # batch dims are summed by OpNode


def _dy(g, x, y):
    if y.ndim == 2 and x.ndim > 2:
        # (..., m, k) @ (k, n): one (k, M) @ (M, n) product over the flattened batch, rather
        # than a batch of products summed afterwards (XLA runs that 2-3x slower on CPU)
        return mT(x.reshape(-1, x.shape[-1])) @ g.reshape(-1, g.shape[-1])
    g, x2, y2 = _as_mats(g, x, y)
    gy = mT(x2) @ g
    return squeeze(gy, -1) if y.ndim == 1 else gy


def _matmul_name(params, args):
    x, y = args
    return {(2, 2): "MmBackward0", (1, 1): "DotBackward0", (2, 1): "MvBackward0"}.get(
        (x.ndim, y.ndim), "BmmBackward0" if x.ndim == y.ndim == 3 else "MatmulBackward0")


_matmul = register(Op(
    "matmul", jnp.matmul, promote="all", grad_name=_matmul_name,
    vjp=(lambda g, x, y, *, out: _dx(g, x, y), lambda g, x, y, *, out: _dy(g, x, y)),
    samples=[Sample((2, 3), (3, 4)), Sample((3,), (3,)), Sample((2, 3), (3,)), Sample((3,), (3, 2)),
             Sample((2, 2, 3), (3, 4)), Sample((2, 1, 2, 3), (3, 3, 2)), Sample((4, 2, 3), (4, 3, 2))]))


def matmul(input, other):
    """Matrix product with numpy/PyTorch broadcasting rules (as ``torch.matmul`` / ``@``)."""
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are "
                           f"{input.ndim}D and {other.ndim}D")
    k1 = input.shape[-1]
    k2 = other.shape[-2] if other.ndim > 1 else other.shape[0]
    if k1 != k2:
        a = "x".join(map(str, input.shape)) if input.ndim > 1 else f"{input.shape[0]}"
        b = "x".join(map(str, other.shape)) if other.ndim > 1 else f"{other.shape[0]}"
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a} and {b})"
                           if input.ndim == other.ndim == 2 else
                           f"matmul: inner dimensions differ: {list(input.shape)} @ "
                           f"{list(other.shape)} ({k1} != {k2})")
    return apply(_matmul, input, other)


_matmul.public = matmul


def mm(input, mat2):
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected 2D tensors, got {input.ndim}D and {mat2.ndim}D")
    return matmul(input, mat2)


def bmm(input, mat2):
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError(f"batch1 must be a 3D tensor (got {input.ndim}D and {mat2.ndim}D)")
    return matmul(input, mat2)


def mv(input, vec):
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {input.ndim}, {vec.ndim}")
    return matmul(input, vec)


def dot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    return matmul(input, other)


def outer(input, vec2):
    return unsqueeze(input, 1) * unsqueeze(vec2, 0)
