"""Matrix products: matmul (batched, broadcasting, 1-D cases), mm, bmm, mv, dot, outer."""
from __future__ import annotations

import math

import jax.numpy as jnp

from .._errors import CPP_TYPE_NAME, SCALAR_TYPE_NAME
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


# PyTorch's messages name dtypes two ways: C++ types in mm's check, ScalarType names elsewhere
_C_TYPE, _SCALAR = CPP_TYPE_NAME, SCALAR_TYPE_NAME


def _mat(shape):
    return "x".join(map(str, shape))


def _check_mm(a_shape, b_shape, a, b):
    """PyTorch's mm checks: shapes first, then dtypes (``a``/``b`` are the tensors)."""
    if a_shape[1] != b_shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({_mat(a_shape)} and "
                           f"{_mat(b_shape)})")
    if a.dtype is not b.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{_C_TYPE[a.dtype.name]} != {_C_TYPE[b.dtype.name]}")


def _check_mv(m_shape, mat, vec):
    if m_shape[1] != vec.shape[0]:
        raise RuntimeError(f"size mismatch, got input ({m_shape[0]}), mat ({_mat(m_shape)}), "
                           f"vec ({vec.shape[0]})")
    if mat.dtype is not vec.dtype:  # (the first is the result's, made with vec's dtype)
        v, m = _SCALAR[vec.dtype.name], _SCALAR[mat.dtype.name]
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got {v}, {m}, "
                           f"and {v}")


def _check_dot(a, b):
    if a.dtype is not b.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{_SCALAR[a.dtype.name]} and {_SCALAR[b.dtype.name]}")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src "
                           f"[{b.shape[0]}] to have the same number of elements, but got "
                           f"{a.shape[0]} and {b.shape[0]} elements respectively")


def _check_bmm(batch, a_mat, b_mat, a, b):
    if (a_mat[1],) != (b_mat[0],):
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{batch}, {a_mat[1]}] but got: [{batch}, {b_mat[0]}].")
    if a.dtype is not b.dtype:
        raise RuntimeError(f"expected scalar type {_SCALAR[a.dtype.name]} but found "
                           f"{_SCALAR[b.dtype.name]}")


def _batch_shape(a, b):
    """Broadcast batch dims, with PyTorch's message (infer_size) when they do not broadcast."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"The size of tensor a ({x}) must match the size of tensor b ({y}) "
                               f"at non-singleton dimension {i}")
    return tuple(y if x == 1 else x for x, y in zip(a, b))


def _check_matmul(a, b):
    """The errors PyTorch's ``matmul`` raises, in its order, for the kernel it would pick:
    dot (1-D @ 1-D), mv (2-D @ 1-D), mm (2-D or 1-D @ 2-D), a folded mm/mv (N-D @ 2-D/1-D)
    or bmm over the broadcast batch. No dtype promotion: mixed dtypes raise, as in PyTorch."""
    da, db = a.ndim, b.ndim
    if da == 0 or db == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are "
                           f"{da}D and {db}D")
    sa, sb = tuple(a.shape), tuple(b.shape)
    if da == 1 and db == 1:
        _check_dot(a, b)
    elif db == 1 and da >= 2:
        _check_mv((math.prod(sa[:-1]), sa[-1]), a, b)
    elif db == 2 and da <= 2:
        _check_mm(sa if da == 2 else (1, sa[0]), sb, a, b)
    elif db == 2:
        _check_mm((math.prod(sa[:-1]), sa[-1]), sb, a, b)
    else:
        am = sa[-2:] if da >= 2 else (1, sa[0])
        _check_bmm(math.prod(_batch_shape(sa[:-2], sb[:-2])), am, sb[-2:], a, b)


def matmul(input, other):
    """Matrix product with numpy/PyTorch broadcasting rules (as ``torch.matmul`` / ``@``).
    Both operands must have one dtype (PyTorch's matmul does not promote)."""
    if input.dtype is not other.dtype or input.ndim != 2 or other.ndim != 2 \
            or input.shape[1] != other.shape[0]:
        _check_matmul(input, other)
    return apply(_matmul, input, other)


_matmul.public = matmul


def mm(input, mat2):
    if input.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if mat2.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    return matmul(input, mat2)


def bmm(input, mat2):
    if input.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if mat2.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    if input.shape[0] != mat2.shape[0] or input.shape[2] != mat2.shape[1]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{input.shape[0]}, {input.shape[2]}] but got: "
                           f"[{mat2.shape[0]}, {mat2.shape[1]}].")
    return matmul(input, mat2)


def mv(input, vec):
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {input.ndim}, {vec.ndim}")
    return matmul(input, vec)


def dot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    return matmul(input, other)


def outer(input, vec2):
    if input.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument self, but got {input.ndim}-D")
    if vec2.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument vec2, but got {vec2.ndim}-D")
    return unsqueeze(input, 1) * unsqueeze(vec2, 0)
