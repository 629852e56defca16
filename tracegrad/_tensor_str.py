"""Tensor printing: a port of PyTorch's ``torch/_tensor_str.py`` (default print options) to numpy.

``tensor_repr`` reproduces ``repr(torch.Tensor)`` character for character for the dtypes tracegrad
has; ``type_desc`` gives the legacy type names (``torch.FloatTensor [2, 3]``) that PyTorch puts in
autograd error messages.
"""
from __future__ import annotations

import math

import jax
import numpy as np

from ._dtype import get_default_dtype

__all__ = ["tensor_repr", "type_desc", "SHORT"]

# PyTorch's default print options (torch.set_printoptions(profile="default")).
PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80
SCI_MODE = None  # None: chosen per tensor from the magnitudes, as torch does

# dtype name -> short code, for symbolic values ("<traced f32[2, 3]>").
SHORT = {
    "float16": "f16", "bfloat16": "bf16", "float32": "f32", "float64": "f64",
    "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64",
    "uint8": "u8", "bool": "b8",
}

# dtype name -> PyTorch's legacy tensor type name.
_LEGACY = {
    "float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
    "bfloat16": "BFloat16Tensor", "int64": "LongTensor", "int32": "IntTensor",
    "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor",
}


def _is_concrete(v):
    if isinstance(v, (np.ndarray, np.generic)):
        return True
    return isinstance(v, jax.Array) and not isinstance(v, jax.core.Tracer)


def _to_numpy(v):
    a = np.asarray(v)
    if a.dtype.kind not in "biuf":  # bfloat16 (and other ml_dtypes floats) format via float32
        a = a.astype(np.float32)
    return a


class _Formatter:
    """Picks one format (int / fixed / scientific) and one width for all elements of a tensor."""

    def __init__(self, a):
        self.floating_dtype = a.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1

        flat = a.reshape(-1)
        if not self.floating_dtype:
            for value in flat.tolist():
                self.max_width = max(self.max_width, len(f"{value}"))
            return

        vals = flat[np.isfinite(flat) & (flat != 0)]
        if vals.size == 0:
            return
        # torch does the magnitude tests in double (half overflows at 1e8)
        nz_abs = np.abs(vals).astype(np.float64)
        nz_min, nz_max = nz_abs.min(), nz_abs.max()
        self.int_mode = bool(np.all(vals == np.ceil(vals)))
        if SCI_MODE is None:
            self.sci_mode = bool(nz_max / nz_min > 1000.0 or nz_max > 1.0e8 or nz_min < 1.0e-4)
        else:
            self.sci_mode = SCI_MODE

        if self.sci_mode:
            fmt, extra = f"{{:.{PRECISION}e}}", 0
        elif self.int_mode:
            fmt, extra = "{:.0f}", 1  # room for the "." that marks a float
        else:
            fmt, extra = f"{{:.{PRECISION}f}}", 0
        for value in vals.tolist():
            self.max_width = max(self.max_width, len(fmt.format(value)) + extra)

    def width(self):
        return self.max_width

    def format(self, value):
        if self.floating_dtype:
            if self.sci_mode:
                ret = f"{{:{self.max_width}.{PRECISION}e}}".format(value)
            elif self.int_mode:
                ret = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    ret += "."
            else:
                ret = f"{{:.{PRECISION}f}}".format(value)
        else:
            ret = f"{value}"
        return (self.max_width - len(ret)) * " " + ret


def _vector_str(a, indent, summarize, formatter):
    # element length includes the ", " separator
    element_length = formatter.width() + 2
    elements_per_line = max(1, math.floor((LINEWIDTH - indent) / element_length))

    if summarize and not EDGEITEMS:
        data = ["..."]
    elif summarize and a.shape[0] > 2 * EDGEITEMS:
        data = ([formatter.format(v) for v in a[:EDGEITEMS].tolist()] + [" ..."]
                + [formatter.format(v) for v in a[-EDGEITEMS:].tolist()])
    else:
        data = [formatter.format(v) for v in a.tolist()]

    lines = [", ".join(data[i:i + elements_per_line])
             for i in range(0, len(data), elements_per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _tensor_str_with_formatter(a, indent, summarize, formatter):
    dim = a.ndim
    if dim == 0:
        return formatter.format(a.item())
    if dim == 1:
        return _vector_str(a, indent, summarize, formatter)

    if summarize and a.shape[0] > 2 * EDGEITEMS:
        slices = ([_tensor_str_with_formatter(a[i], indent + 1, summarize, formatter)
                   for i in range(EDGEITEMS)]
                  + ["..."]
                  + [_tensor_str_with_formatter(a[i], indent + 1, summarize, formatter)
                     for i in range(a.shape[0] - EDGEITEMS, a.shape[0])])
    else:
        slices = [_tensor_str_with_formatter(a[i], indent + 1, summarize, formatter)
                  for i in range(a.shape[0])]

    # sub-tensors of an N-D tensor are separated by N-1 newlines
    return "[" + ("," + "\n" * (dim - 1) + " " * (indent + 1)).join(slices) + "]"


def _summarized_data(a):
    """The elements a summarised print shows, so the formatter only measures those."""
    dim = a.ndim
    if dim == 0:
        return a
    if dim == 1:
        if a.shape[0] > 2 * EDGEITEMS:
            return np.concatenate((a[:EDGEITEMS], a[-EDGEITEMS:]))
        return a
    if not EDGEITEMS:
        return np.empty((0,) * dim, a.dtype)
    if a.shape[0] > 2 * EDGEITEMS:
        rows = list(range(EDGEITEMS)) + list(range(a.shape[0] - EDGEITEMS, a.shape[0]))
    else:
        rows = range(a.shape[0])
    return np.stack([_summarized_data(a[i]) for i in rows])


def _tensor_str(a, indent):
    if a.size == 0:
        return "[]"
    summarize = a.size > THRESHOLD
    formatter = _Formatter(_summarized_data(a) if summarize else a)
    return _tensor_str_with_formatter(a, indent, summarize, formatter)


def _add_suffixes(tensor_str, suffixes, indent, force_newline):
    tensor_strs = [tensor_str]
    # (sic) torch's "+ 1" makes the last line count two characters longer than it is
    last_line_len = len(tensor_str) - tensor_str.rfind("\n") + 1
    for suffix in suffixes:
        # measured as torch spells it, so lines break exactly where torch's do
        suffix_len = len(suffix.replace("tracegrad.", "torch."))
        if force_newline or last_line_len + suffix_len + 2 > LINEWIDTH:
            tensor_strs.append(",\n" + " " * indent + suffix)
            last_line_len = indent + suffix_len
            force_newline = False
        else:
            tensor_strs.append(", " + suffix)
            last_line_len += suffix_len + 2
    tensor_strs.append(")")
    return "".join(tensor_strs)


def _default_float_name():
    return get_default_dtype().name


def tensor_repr(t) -> str:
    """``repr`` of a tracegrad Tensor, as PyTorch prints the same tensor (``torch.`` -> ``tracegrad.``)."""
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []

    device = t.device
    if device.type != "cpu":
        name = str(device)
        suffixes.append(f"device='{name if ':' in name else name + ':0'}'")

    v = t._data.value
    dtype_name = t.dtype.name
    dtype_suffix = "dtype=tracegrad." + dtype_name
    default_float = _default_float_name()
    if not _is_concrete(v):
        # a symbolic value while tracing: no data to show, only its type
        dt = np.dtype(v.dtype).name
        tensor_str = f"<traced {SHORT.get(dt, dt)}[{', '.join(str(s) for s in v.shape)}]>"
    elif np.size(v) == 0:
        if np.ndim(v) != 1:
            suffixes.append("size=" + str(tuple(np.shape(v))))
        if dtype_name != default_float:
            suffixes.append(dtype_suffix)
        tensor_str = "[]"
    else:
        if not EDGEITEMS:
            suffixes.append("size=" + str(tuple(np.shape(v))))
        if dtype_name not in (default_float, "int64", "bool"):
            suffixes.append(dtype_suffix)
        tensor_str = _tensor_str(_to_numpy(v), indent)

    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name().rsplit('::', 1)[-1]}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")

    return _add_suffixes(prefix + tensor_str, suffixes, indent, force_newline=False)


def type_desc(saved) -> str:
    """PyTorch's legacy type description of a saved value, e.g. ``torch.cuda.DoubleTensor [3, 4]``."""
    v = saved.value
    name = _LEGACY[np.dtype(v.dtype).name]
    cuda = "cuda." if saved.device.type == "cuda" else ""
    return f"torch.{cuda}{name} [{', '.join(str(s) for s in v.shape)}]"
