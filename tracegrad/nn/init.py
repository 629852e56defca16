"""``tracegrad.nn.init``: in-place initialisers written as PyTorch's (torch/nn/init.py): the same
bounds computed in the same order, drawn by ``Tensor.uniform_`` / ``Tensor.normal_``, so after
``tracegrad.manual_seed(s)`` a freshly made layer holds PyTorch's initial weights bit for bit.

    >>> import tracegrad as torch
    >>> _ = torch.manual_seed(0)
    >>> torch.nn.init.uniform_(torch.empty(3), -1, 1)
    tensor([-0.0075,  0.5364, -0.8230])
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _creation as C
from ..autograd.grad_mode import no_grad

__all__ = ["calculate_gain", "uniform_", "normal_", "zeros_", "ones_", "constant_", "eye_",
           "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
           "trunc_normal_", "orthogonal_"]

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d")


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for an activation (PyTorch's table)."""
    if nonlinearity in _LINEAR or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif (not isinstance(param, bool) and isinstance(param, int)) or isinstance(param, float):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 "
                         "dimensions")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill ``tensor`` in place with samples from ``U(a, b)``."""
    with no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill ``tensor`` in place with samples from ``N(mean, std**2)``."""
    with no_grad():
        return tensor.normal_(mean, std, generator=generator)


def constant_(tensor, val):
    with no_grad():
        return tensor.fill_(val)


def zeros_(tensor):
    with no_grad():
        return tensor.zero_()


def ones_(tensor):
    return constant_(tensor, 1.0)


def eye_(tensor):
    """Fill a 2-D tensor with the identity matrix."""
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    with no_grad():
        return tensor.copy_(C.eye(*tensor.shape, dtype=tensor.dtype, device=tensor.device))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He initialisation: ``U(-bound, bound)`` with ``bound = sqrt(3) * gain / sqrt(fan)``."""
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std  # this order of roundings, as PyTorch
    with no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He initialisation: ``N(0, std**2)`` with ``std = gain / sqrt(fan)``."""
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    with no_grad():
        return tensor.normal_(0, std, generator=generator)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot initialisation: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot initialisation: ``N(0, std**2)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _host(t):
    return np.asarray(t._data.value)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with ``N(mean, std**2)`` samples truncated to ``[a, b]``, by PyTorch 2.13's
    rejection sampling: when the interval holds more than 0.3 of the mass, ``normal_`` draws of
    the whole tensor replace the samples outside it until none is (PyTorch's numbers, bit for
    bit); otherwise uniform candidates on ``[a, b]`` are accepted against the density (the same
    draws; the acceptance test uses a correctly rounded log where PyTorch uses its vectorised
    one, which can differ when a log lands within an ulp of the threshold)."""
    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    dt = tensor.dtype.np
    with no_grad():
        p = norm_cdf((b - mean) / std) - norm_cdf((a - mean) / std)
        if p > 0.3:
            lo, hi = dt.type(a), dt.type(b)
            result = _host(tensor.normal_(mean, std, generator=generator))
            while True:
                mask = (result < lo) | (result > hi)
                if not mask.any():
                    break
                fresh = _host(C.empty_like(tensor).normal_(mean, std, generator=generator))
                result = np.where(mask, fresh, result)
        else:
            mode = max(a, min(mean, b))
            log_peak = dt.type(-0.5 * ((mode - mean) / std) ** 2)
            m, s = dt.type(mean), dt.type(std)

            def log_pdf(x):
                z = (x - m) / s
                return (z * z) * dt.type(-0.5) - log_peak

            def log_uniform():
                u = _host(C.empty_like(tensor).uniform_(generator=generator))
                with np.errstate(divide="ignore"):
                    return np.log(u.astype(np.float64)).astype(dt)

            result = _host(tensor.uniform_(a, b, generator=generator))
            pending = log_uniform() > log_pdf(result)
            while pending.any():
                cand = _host(C.empty_like(tensor).uniform_(a, b, generator=generator))
                result = np.where(pending, cand, result)
                pending = np.where(pending, log_uniform() > log_pdf(cand), pending)
        return tensor.copy_(C.tensor(np.ascontiguousarray(result), device=tensor.device))


def orthogonal_(tensor, gain=1, generator=None):
    """Fill with a (semi-)orthogonal matrix, as PyTorch: ``normal_(0, 1)`` draws (PyTorch's
    numbers) of shape ``(rows, numel // rows)``, a QR decomposition, the signs of ``diag(r)``
    applied to ``q``, times ``gain``. numpy's QR is not PyTorch's LAPACK call, so the values
    agree with PyTorch's to float rounding, not bit for bit."""
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = C.empty((rows, cols), dtype=tensor.dtype).normal_(0, 1, generator=generator)
    m = np.asarray(flat._data.value)
    if rows < cols:
        m = m.T
    q, r = np.linalg.qr(m)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    q = (q * np.asarray(gain, q.dtype)).astype(tensor.dtype.np)
    with no_grad():
        return tensor.copy_(C.tensor(q.reshape(tuple(tensor.shape)), device=tensor.device))
