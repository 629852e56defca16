"""Run a program with ``T`` = torch or tracegrad, eagerly or compiled, and record what a user
could observe: every tensor's value, dtype, shape, autograd flags, ``.grad`` and version, and
the exception (type, where) if one was raised.

Steps run one by one (the body as one call), each compiled under its own file name, so an
exception is placed at the step that raised it, in eager and traced code alike.
"""
from __future__ import annotations

import dataclasses
import traceback
import warnings

import numpy as np

from .program import PRELUDE

__all__ = ["Observation", "Error", "run", "MODES"]

# tracegrad modes; torch always runs eagerly as the reference
MODES = ("eager", "compiled", "compiled-hit")


@dataclasses.dataclass
class Error:
    type: str
    message: str
    where: tuple  # ("input" | "body" | "call" | "tail", step index or None)
    module: str   # the exception class's module ("builtins", "jax...")

    def __str__(self):
        first = self.message.strip().split("\n")[0][:160]
        return f"{self.type} at {self.where[0]}[{self.where[1]}]: {first}"


@dataclasses.dataclass
class Observation:
    mode: str
    tensors: dict   # name -> dict of observed properties
    error: Error | None


def _dtype_name(d):
    return str(d).rsplit(".", 1)[-1]


def _array(lib, t):
    t = t.detach()
    if lib.__name__ == "torch":
        t = t.cpu().resolve_conj().resolve_neg()
    return np.array(t.numpy(), copy=True)


def _observe(lib, t):
    obs = {"shape": tuple(t.shape), "dtype": _dtype_name(t.dtype), "value": _array(lib, t),
           "requires_grad": bool(t.requires_grad), "is_leaf": bool(t.is_leaf),
           "grad_fn": _read_grad_fn(t),
           "version": int(t._version)}
    g = None
    if t.is_leaf or t.retains_grad:
        g = t.grad
    obs["grad"] = None if g is None else _array(lib, g)
    obs["grad_dtype"] = None if g is None else _dtype_name(g.dtype)
    return obs


def _read_grad_fn(t):
    # PyTorch raises reading grad_fn of a no_grad view whose base changed in place: that is
    # an observation too, as the exception's type
    try:
        node = t.grad_fn
    except Exception as e:  # noqa: BLE001
        return f"<raises {type(e).__name__}>"
    return None if node is None else _grad_fn_name(node)


def _grad_fn_name(node):
    """``node.name()``, and its class name where that differs (users see both)."""
    name, cls = node.name().replace("torch::autograd::", ""), type(node).__name__
    return name if name == cls else f"{name} (class {cls})"


def _where(exc, section, index, files):
    """(section, step) of the frame that raised: the innermost frame in one of our files."""
    found = (section, index)
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        name = frame.f_code.co_filename
        if name in files:
            found = files[name](lineno)
    return found


def _compile(src, filename):
    return compile(src, filename, "exec")


def _body_step_of(program):
    """lineno in the body source -> ("body", step index)."""
    starts = []
    line = 2  # line 1 is `def body(...)`
    for k, s in enumerate(program.body):
        starts.append((line, k))
        line += s.code.count("\n") + 1

    def step(lineno):
        k = None
        for start, idx in starts:
            if lineno >= start:
                k = idx
        return ("body", k)
    return step


class _Run:
    def __init__(self, program, lib):
        self.program, self.lib = program, lib
        self.files = {"<fuzz-body>": _body_step_of(program)}

    def fresh_namespace(self):
        ns = {"T": self.lib, "__name__": "fuzz_program"}
        exec(_compile(PRELUDE, "<fuzz-prelude>"), ns)
        return ns

    def inputs(self, ns):
        for k, inp in enumerate(self.program.inputs):
            self.exec(inp.source(), ns, "input", k)

    def define_body(self, ns, compiled):
        exec(_compile(self.program.body_source(), "<fuzz-body>"), ns)
        if compiled:
            ns["body"] = self.lib.compile(ns["body"])

    def call_and_tail(self, ns):
        self.exec(self.program.call_source(), ns, "call", None)
        for k, s in enumerate(self.program.tail_steps()):
            self.exec(s.code, ns, "tail", k)

    def exec(self, src, ns, section, index):
        name = f"<fuzz-{section}-{index}>"
        self.files[name] = lambda lineno, s=section, i=index: (s, i)
        code = _compile(src, name)  # a SyntaxError is the harness's bug: never a result
        try:
            exec(code, ns)
        except Exception as e:  # noqa: BLE001 - what a user's code would see is the result
            raise _Raised(Error(type(e).__name__, str(e), _where(e, section, index, self.files),
                                type(e).__module__)) from None

    def observe(self, ns, mode, error):
        tensors = {}
        Tensor = self.lib.Tensor
        for name in self.program.names():
            t = ns.get(name)
            if isinstance(t, Tensor):
                tensors[name] = _observe(self.lib, t)
        return Observation(mode, tensors, error)


class _Raised(Exception):
    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def run(program, lib, mode="eager"):
    """Observations of ``program`` with ``T = lib``: ``[eager]`` for mode "eager" (torch's
    reference run too), ``[compiled, compiled-hit]`` for mode "compiled" (the traced call and
    a cache hit of the same compiled function on fresh inputs)."""
    r = _Run(program, lib)
    passes = ["eager"] if mode == "eager" else ["compiled", "compiled-hit"]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled_body = None
        for p in passes:
            ns = r.fresh_namespace()
            error = None
            try:
                r.inputs(ns)
                if compiled_body is None:
                    r.define_body(ns, compiled=(mode == "compiled"))
                    compiled_body = ns["body"]
                ns["body"] = compiled_body
                r.call_and_tail(ns)
            except _Raised as e:
                error = e.error
            finally:
                lib.set_grad_enabled(True)
            out.append(r.observe(ns, p, error))
    return out
