"""The cache entry: one compiled specialisation of a function -- its ``Program``, the jitted
forward, and the backward and joint programs, printed and jitted on first use -- and the
policy that decides when a call runs the joint program.

The fields a cache hit reads are copied from the program onto the entry (slots), so the hot
path does one attribute load for each.
"""
from __future__ import annotations

import time

import jax

from ..autograd import profiler as _profiler
from . import codegen
from .program import OutKind, Output, Program

__all__ = ["Entry"]


class Entry:
    """One compiled specialisation of a function; ``Entry.eager()`` marks inputs that hit a
    graph break (fullgraph=False), for which calls run the function eagerly."""

    __slots__ = (
        "program", "eager_only", "fn_name",
        # copied from the program for the call path
        "captured", "diff_outputs", "retain_outputs", "n_prog_out", "targets", "writebacks",
        "input_hooks", "grad_mode_after", "out_spec", "out_tree", "grad_present", "grad_meta",
        "grad_writes", "host_effects", "checks",
        "bwd_consts", "residual_spec",
        # the forward
        "fwd", "fwd_py", "fwd_source", "compiled", "plain", "bare",
        # the backward (lazy)
        "bwd", "bwd_py", "bwd_source", "codegen_s",
        # the joint program (lazy) and its policy
        "joint_ok", "joint_on", "joint_score", "joint", "joint_source", "joint_compiled")

    def __init__(self, program: Program, differentiate=False):
        p = self.program = program
        self.eager_only = False
        self.fn_name = p.name
        self.captured = p.captured
        self.diff_outputs = p.diff_outputs
        self.retain_outputs = p.retain_outputs
        self.n_prog_out = p.n_outputs
        self.targets = p.targets
        self.writebacks = p.writebacks
        self.input_hooks = p.input_hooks
        self.grad_mode_after = p.grad_mode_after
        self.out_spec = p.outputs
        self.out_tree = p.out_tree
        self.grad_writes = p.grad_writes
        self.host_effects = p.host_effects
        self.checks = bool(p.captured or p.host_guards)  # guards.check_captured has work
        b = p.backward
        self.grad_present = b.grad_present if b else ()
        self.grad_meta = b.grad_meta if b else ()
        self.bwd_consts = b.consts if b else ()
        self.residual_spec = b.residuals if b else ()

        fwd = p.forward
        gen = codegen.emit(fwd, "forward", p.name, fwd.inputs, fwd.outputs)
        self.fwd_source, self.fwd_py = gen
        # one output and no residuals: the jitted program returns the bare array (a
        # one-element tuple costs jax ~0.2 us of output handling per call)
        self.bare = len(fwd.outputs) == 1
        self.fwd = jax.jit((lambda *a: gen.fn(*a)[0]) if self.bare else gen.fn)
        self.compiled = False
        self.plain = (p.out_tree is None and p.outputs == (Output(OutKind.PROGRAM, 0),)
                      and not p.writebacks and not p.input_hooks and p.grad_mode_after is None
                      and not p.grad_writes and not p.host_effects and not p.host_guards
                      and not p.freed)
        self.bwd = self.bwd_py = self.bwd_source = None
        self.codegen_s = 0.0
        self.joint_ok = (len(p.diff_outputs) == 1 and b is not None and b.grad_meta[0][0] == ()
                         and not b.has_hooks)
        # differentiate=True (tracegrad.func): every call's output is differentiated with the
        # implicit gradient, so the joint program is used from the first call
        self.joint_on = bool(differentiate and self.joint_ok)
        self.joint_score = 2 if self.joint_on else 0
        self.joint = self.joint_source = None
        self.joint_compiled = False

    @classmethod
    def eager(cls, name):
        e = cls.__new__(cls)
        e.program, e.eager_only, e.fn_name = None, True, name
        return e

    def backward_fn(self):
        """jax.jit of the backward program (printed on first use)."""
        if self.bwd is None:
            t0 = time.perf_counter()
            b = self.program.backward
            with _profiler.region("tg.compile.codegen", program="backward"):
                self.bwd_source, self.bwd_py = codegen.emit(b.graph, "backward", self.fn_name,
                                                            b.args, b.outputs)
            self.bwd = jax.jit(self.bwd_py)
            self.codegen_s = time.perf_counter() - t0
        return self.bwd

    def joint_fn(self):
        """jax.jit of forward-then-backward with the implicit seed (built on first use)."""
        if self.joint is None:
            self.backward_fn()
            p = self.program
            with _profiler.region("tg.compile.codegen", program="joint"):
                self.joint_source, fn = codegen.emit_joint(
                    self.fn_name, [v.name for v in p.forward.inputs], p.n_outputs, p.backward,
                    self.fwd_py, self.bwd_py)
            self.joint = jax.jit(fn)
        return self.joint

    # The joint program is speculation that the output will be differentiated with the
    # implicit gradient (``loss.backward()``). It is switched on by such a backward, and off
    # again when joint results go unused (the output dropped without a backward, or a
    # backward with another gradient, which then recomputes the forward's residuals).
    def joint_seen(self):
        if self.joint_ok:
            self.joint_score = min(self.joint_score + 1, 4)
            self.joint_on = True

    def joint_missed(self):
        self.joint_score -= 2
        if self.joint_score <= 0:
            self.joint_on = False
