"""Errors and error wording shared by every layer: ``GraphBreak``, the freed-graph message,
PyTorch's names of C++ types, and the user's source line a tracing error cites.

This is the bottom layer (it reads only ``_state``), so the tensor, the op registry, autograd
and the compiler all raise the same errors without importing one another for them.
"""
from __future__ import annotations

import linecache
import os
import sys

import jax

from ._state import STATE

__all__ = ["GraphBreak", "FREED_GRAPH_MSG", "SCALAR_TYPE_NAME", "C_TYPE_NAME", "CPP_TYPE_NAME",
           "user_location", "data_dependent"]

FREED_GRAPH_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed when "
    "you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
    "through the graph a second time or if you need to access saved tensors after calling backward.")

# PyTorch's names for a dtype in its messages, by tracegrad dtype name:
# the ScalarType name ("not implemented for 'Long'", "result type Float can't be cast ..."),
SCALAR_TYPE_NAME = {"bool": "Bool", "uint8": "Byte", "int8": "Char", "int16": "Short",
                    "int32": "Int", "int64": "Long", "float16": "Half", "bfloat16": "BFloat16",
                    "float32": "Float", "float64": "Double"}
# the C type of a value conversion ("value cannot be converted to type int64_t without overflow"),
C_TYPE_NAME = {"uint8": "uint8_t", "int8": "int8_t", "int16": "int16_t", "int32": "int",
               "int64": "int64_t", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
               "float32": "float", "float64": "double"}
# and the demangled C++ type of a kernel's check ("expected m1 and m2 to have the same dtype,
# but got: float != double"; torch 2.13 prints these exact spellings).
CPP_TYPE_NAME = {"bool": "bool", "uint8": "unsigned char", "int8": "signed char",
                 "int16": "short int", "int32": "int", "int64": "long int", "float16": "c10::Half",
                 "bfloat16": "c10::BFloat16", "float32": "float", "float64": "double"}


class GraphBreak(RuntimeError):
    """The traced function needs a tensor's *value* (``if x > 0``, ``.item()``, ...), which a
    trace cannot know. With ``fullgraph=True`` this is raised; otherwise the call runs eagerly."""

    def __init__(self, what, loc):
        self.what, self.loc = what, loc
        where = f"{loc[0]}:{loc[1]}: {loc[2]}" if loc else "<unknown>"
        super().__init__(
            f"tracegrad.compile: {what} depends on a tensor's value, which is unknown while tracing "
            f"(at {where}). Make the branch depend on shapes or Python values, use tg.where() for "
            f"elementwise choices, move the value-dependent part out of the compiled function, or "
            f"compile with fullgraph=False to run such calls eagerly.")


_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_JAX_DIR = os.path.dirname(os.path.abspath(jax.__file__))
_SKIP = (_PKG_DIR + os.sep, _JAX_DIR + os.sep, "<tracegrad:",
         os.path.dirname(os.__file__) + os.sep + "contextlib",
         os.path.dirname(os.__file__) + os.sep + "functools")


def user_location():
    """(file, line, source) of the innermost frame outside tracegrad and jax."""
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not os.path.abspath(fn).startswith(_SKIP) and not fn.startswith("<tracegrad:"):
            text = linecache.getline(fn, f.f_lineno).strip()
            return (os.path.basename(fn), f.f_lineno, text)
        f = f.f_back
    return None


def data_dependent(what):
    """Raise ``GraphBreak``: a concrete value was needed (bool(), item(), numpy(), masks) where
    there is none -- while tracing (citing the user's line) or inside a jax transformation."""
    raise GraphBreak(what, user_location() if STATE.tracer is not None else None)
