"""A fuzz program: inputs, a body (the function that is run eagerly or compiled) and a tail
(backward passes), each a list of Python steps over a module named ``T``.

The same text runs with ``T`` bound to ``torch`` or to ``tracegrad``; ``render`` prints it as
a standalone repro script. Steps know the names they read and define, which is all the
shrinker needs to drop one step and everything that depends on it.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

__all__ = ["Input", "RawInput", "Step", "Tail", "Program", "PRELUDE"]

# W(t, k): a deterministic, shape-driven weight (for grad_outputs and second-order sums), so
# the tail stays valid when the shrinker changes input shapes.
PRELUDE = """\
import numpy as np


def W(t, k=0):
    n = np.arange(t.numel(), dtype=np.float64).reshape(tuple(t.shape))
    return T.tensor((n % 5 - 1.5) * 0.5 + 0.125 * k, dtype=t.dtype)
"""


@dataclasses.dataclass
class Input:
    """One input tensor. ``kind``: "leaf" (requires grad), "const" (does not), or "nonleaf"
    (``name`` is ``name_leaf * 1.5``, made before the call); ``hook``: None, "retain_grad"
    or "hook" (a gradient hook that doubles), for a non-leaf input."""

    name: str
    data: np.ndarray
    dtype: str  # "float64", "float32", "int64", "bool"
    kind: str = "leaf"
    hook: str | None = None

    def names(self):
        return (self.name + "_leaf", self.name) if self.kind == "nonleaf" else (self.name,)

    def source(self):
        lit = repr(self.data.tolist())
        if self.dtype == "bool":
            lit = repr(self.data.astype(bool).tolist())
        elif self.dtype == "int64":
            lit = repr(self.data.astype(np.int64).tolist())
        rg = ", requires_grad=True" if self.kind in ("leaf", "nonleaf") else ""
        if self.kind != "nonleaf":
            return f"{self.name} = T.tensor({lit}, dtype=T.{self.dtype}{rg})"
        lines = [f"{self.name}_leaf = T.tensor({lit}, dtype=T.{self.dtype}{rg})",
                 f"{self.name} = {self.name}_leaf * 1.5"]
        if self.hook == "retain_grad":
            lines.append(f"{self.name}.retain_grad()")
        elif self.hook == "hook":
            lines.append(f"{self.name}.register_hook(lambda g: g * 2)")
        return "\n".join(lines)


@dataclasses.dataclass
class RawInput:
    """An input written as source (``x0 = T.tensor(...)``), for hand-written repros."""

    source_text: str
    kind: str = "leaf"

    @property
    def name(self):
        return self.names()[-1]

    def names(self):
        return tuple(m.group(1) for m in re.finditer(r"^(\w+) =", self.source_text, re.M))

    def source(self):
        return self.source_text


_DEFINES = re.compile(r"^\s*([\w, ]+?),? =[^=]")


@dataclasses.dataclass
class Step:
    """One statement (or a ``with`` block) of the body or the tail. ``label`` names the op it
    exercises (disagreements are classed by it); ``mutates`` the names it changes in place."""

    label: str
    code: str
    reads: tuple = ()
    defines: tuple = ()
    mutates: tuple = ()

    def renamed(self, old, new):
        pat = re.compile(rf"\b{re.escape(old)}\b")
        swap = lambda names: tuple(new if n == old else n for n in names)  # noqa: E731
        return Step(self.label, pat.sub(new, self.code), swap(self.reads), self.defines,
                    swap(self.mutates))


def _statements(src):
    lines = [ln for ln in src.strip("\n").split("\n") if ln.strip()]
    out = []
    for ln in lines:
        if ln.startswith((" ", "\t")) and out:
            out[-1] += "\n" + ln
        else:
            out.append(ln)
    return out


@dataclasses.dataclass
class Tail:
    """The backward passes after the call. ``kind`` "grad": ``autograd.grad(outs, xs,
    grad_outputs=W(...))`` into ``g0, g1, ...``; "backward": ``o.backward(W(o))`` (or
    ``autograd.backward`` of several outputs) into ``.grad`` (``implicit``: no gradient argument, for a 0-d output). ``retain`` and
    ``create`` are retain_graph / create_graph of the first pass; ``second`` differentiates
    the first gradients again (into ``gg0, ...``); ``repeat`` runs the first pass again that
    many times (without retain_graph: the last of them may find the graph freed)."""

    kind: str
    outs: list
    xs: list
    retain: bool = False
    create: bool = False
    second: bool = False
    repeat: int = 0
    implicit: bool = False

    def steps(self):
        flags = (", retain_graph=True" if self.retain else "") + \
            (", create_graph=True" if self.create else "")
        if self.kind == "backward" and len(self.outs) > 1:
            call = (f"T.autograd.backward([{', '.join(self.outs)}], grad_tensors=["
                    f"{', '.join(f'W({o}, {k})' for k, o in enumerate(self.outs))}]")
            first = Step("backward", call + flags + ")", tuple(self.outs))
            return [first] + [Step("backward", call + ")", tuple(self.outs))] * self.repeat
        if self.kind == "backward":
            o = self.outs[-1]
            arg = "" if self.implicit else f"W({o})"
            args = ", ".join(a for a in (arg, flags.removeprefix(", ")) if a)
            first = Step("backward", f"{o}.backward({args})", (o,))
            return [first] + [Step("backward", f"{o}.backward({arg})", (o,))] * self.repeat
        gs = tuple(f"g{k}" for k in range(len(self.xs)))
        call = (f"{', '.join(gs)}, = T.autograd.grad([{', '.join(self.outs)}], [{', '.join(self.xs)}], "
                f"grad_outputs=[{', '.join(f'W({o}, {k})' for k, o in enumerate(self.outs))}], "
                f"allow_unused=True")
        out = [Step("grad", call + flags + ")", tuple(self.outs) + tuple(self.xs), gs)]
        if self.second:
            ggs = tuple(f"gg{k}" for k in range(len(self.xs)))
            s = (f"sum((W(g, k + 1) * g).sum() for k, g in enumerate([{', '.join(gs)}]) "
                 f"if g is not None and g.requires_grad)")
            out.append(Step("grad2", f"{', '.join(ggs)}, = T.autograd.grad([{s}], "
                                     f"[{', '.join(self.xs)}], allow_unused=True)", gs, ggs))
        out += [Step("grad", call + ")", tuple(self.outs) + tuple(self.xs), gs)] * self.repeat
        return out


@dataclasses.dataclass
class Program:
    inputs: list
    body: list
    tail: Tail | None = None
    call_under_no_grad: bool = False
    seed: tuple = ()

    def tail_steps(self):
        if self.tail is None:
            return []
        return self.tail if isinstance(self.tail, list) else self.tail.steps()

    @classmethod
    def from_source(cls, inputs, body, tail="", call_under_no_grad=False):
        """A program from three pieces of source, one statement a line (a ``with`` line
        takes the indented line after it): the inputs, the body (the function's statements,
        without ``def``/``return``) and the tail. What the regression tests inline."""
        ins = []
        for line in _statements(inputs):   # x0.retain_grad() belongs to the input above it
            if ins and not re.match(r"\w+ =", line):
                ins[-1].source_text += "\n" + line
            else:
                ins.append(RawInput(line))
        known = {n for i in ins for n in i.names()}

        def steps(src):
            out = []
            for code in _statements(src):
                m = _DEFINES.match(code.split("\n")[-1])
                defines = tuple(n.strip() for n in m.group(1).split(",") if n.strip()) if m else ()
                reads = tuple(n for n in re.findall(r"\b\w+\b", code) if n in known and n not in defines)
                label = re.sub(r"^.*?= ", "", code.split("\n")[-1]).split("(")[0]
                out.append(Step(label, code, tuple(dict.fromkeys(reads)), defines))
                known.update(defines)
            return out
        return cls(ins, steps(body), steps(tail) or None, call_under_no_grad)

    def input_names(self):
        return [i.name for i in self.inputs]

    def outputs(self):
        """The names the body returns: every name it defines, in order."""
        return [n for s in self.body for n in s.defines]

    def names(self):
        """Every tensor name a run can observe, in program order."""
        out = [n for i in self.inputs for n in i.names()]
        out += self.outputs()
        out += [n for s in self.tail_steps() for n in s.defines if n not in out]
        return out

    def labels(self):
        return [s.label for s in self.body]

    # ------------------------------------------------------------------ rendering
    def body_source(self):
        args = ", ".join(self.input_names())
        lines = [f"def body({args}):"]
        for s in self.body:
            lines += ["    " + ln for ln in s.code.split("\n")]
        outs = self.outputs()
        lines.append(f"    return ({', '.join(outs)}{',' if outs else ''})")
        return "\n".join(lines) + "\n"

    def call_source(self):
        outs = self.outputs()
        call = f"({', '.join(outs)}{',' if outs else ''}) = body({', '.join(self.input_names())})"
        if self.call_under_no_grad:
            return "with T.no_grad():\n    " + call + "\n"
        return call + "\n"

    def render(self, lib="tracegrad", compiled=False):
        """The program as a standalone script, with ``T`` = ``lib``."""
        parts = [f"import {lib} as T", PRELUDE]
        parts += [i.source() for i in self.inputs]
        parts.append("\n" + self.body_source())
        if compiled:
            parts.append("body = T.compile(body)")
        parts.append(self.call_source().rstrip("\n"))
        parts += [s.code for s in self.tail_steps()]
        return "\n".join(parts) + "\n"

    def compact(self):
        """Inputs, body and tail as three blocks (no prelude, no ``def``): how repros are
        written in docs and in test_known.py."""
        parts = ["\n".join(i.source() for i in self.inputs),
                 ("# called under no_grad\n" if self.call_under_no_grad else "")
                 + "\n".join(s.code for s in self.body),
                 "\n".join(s.code for s in self.tail_steps())]
        return "\n# --\n".join(p for p in parts)

    def __str__(self):
        return self.render()
