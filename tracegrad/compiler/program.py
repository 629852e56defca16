"""The records the compiler's stages hand each other.

``trace`` (trace.py) returns a frozen ``Program``: the forward graph, what each output leaf
of the user's function is, the tensors the program captured, the in-place changes to write
back, the hooks to replay, and -- when something will be differentiated -- the
``BackwardProgram`` that autodiff.py derived. Codegen, guards, the cache entry, the call path
and the backward node read these records; none of them writes into another stage's state.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, Callable, NamedTuple, Optional

from ..ir.graph import Graph, Value

__all__ = ["OutKind", "Output", "Source", "Ref", "Writeback", "GradKind", "GradWrite", "InputHook", "Captured",
           "CapturedSource", "ResidualFrom", "Residual", "BackwardProgram", "Program"]


class OutKind(enum.Enum):
    """What one output leaf of the user's function is, at each call."""
    PROGRAM = "program"      # program output number ``index``
    ARG = "arg"              # argument tensor ``index``, returned as it is
    SAME = "same"            # the same object as output leaf ``index`` (returned twice)
    ALIAS = "alias"          # a detached alias of output leaf ``index`` (``c.detach()``)
    ARG_ALIAS = "arg_alias"  # a detached alias of argument ``index`` (``x.detach()``)
    OUTSIDE = "outside"      # ``obj``: a tensor that existed before the call
    STATIC = "static"        # ``obj``: a leaf that is not a tensor


class Output(NamedTuple):
    kind: OutKind
    index: int = -1
    obj: Any = None


class Source(enum.Enum):
    """Where a program input comes from at each call."""
    ARG = "arg"              # the call's unique tensor arguments, in order
    CAPTURED = "captured"    # a tensor the function closes over (``Program.captured``)


class Ref(NamedTuple):
    """An argument or a captured tensor, by position."""
    source: Source
    index: int


class Writeback(NamedTuple):
    """An in-place change the function made to ``target``: program output ``output`` is its
    new value, written back after each call."""
    target: Ref
    output: int


class GradKind(enum.Enum):
    """How a program writes the ``.grad`` of a tensor from outside after each call."""
    NONE = "none"            # set to None (zero_grad(set_to_none=True) left it so)
    INPLACE = "inplace"      # into the .grad object it holds (accumulated / zeroed in place)
    NEW = "new"              # a new tensor (the first gradient after a reset)


class GradWrite(NamedTuple):
    """``tensor.grad`` after the call: program output ``output`` (a backward inside)."""
    tensor: Any
    kind: GradKind
    output: int


class InputHook(NamedTuple):
    """``register_hook(hook)`` (or ``retain_grad()`` when ``hook`` is None) called inside the
    function on argument ``arg``: registered on that call's argument at every call."""
    arg: int
    hook: Optional[Callable]


class Captured(NamedTuple):
    """A captured tensor and the facts its guard checks at each call."""
    tensor: Any
    shape: tuple
    dtype: Any
    requires_grad: bool


class CapturedSource(NamedTuple):
    """How the function reaches captured tensor ``index``: ``getter(flat_args)`` (a closure
    cell, a global, a module attribute path), re-checked at each call; ``name`` is the path
    as a program name (``model_0_weight``)."""
    index: int
    getter: Callable
    description: str
    name: str


class ResidualFrom(enum.Enum):
    INPUT = "input"          # a forward input, passed straight from the call's inputs
    OUTPUT = "output"        # a forward output after the program outputs


class Residual(NamedTuple):
    source: ResidualFrom
    index: int


@dataclasses.dataclass(frozen=True)
class BackwardProgram:
    """The derived backward: ``graph`` takes ``args`` (residuals, then tensors it captured,
    then one gradient per differentiable output) and returns one gradient per target that
    gets one (``grad_present``)."""
    graph: Graph
    args: tuple
    outputs: tuple
    consts: tuple            # tensors the backward reads (captured by the rules)
    residuals: tuple         # Residual per residual argument
    grad_present: tuple      # per target: does the backward return its gradient
    grad_meta: tuple         # (shape, dtype) of the gradient of each differentiable output
    has_hooks: bool          # host callbacks (hooks, retain_grad) in the backward


@dataclasses.dataclass(frozen=True)
class Program:
    """One traced specialisation of a function (see the module docstring)."""
    name: str
    forward: Graph
    n_outputs: int           # program outputs; residuals follow them in forward.outputs
    outputs: tuple           # Output per output leaf of the user's function
    out_tree: Any            # the outputs' pytree (None: one tensor)
    diff_outputs: tuple      # output leaves that get the CompiledFunctionBackward
    retain_outputs: frozenset  # positions in diff_outputs with retain_grad() called inside
    writebacks: tuple        # Writeback per mutated argument / captured tensor
    input_hooks: tuple       # InputHook per hook registered on an argument inside
    grad_mode_after: Optional[bool]  # set_grad_enabled(...) left switched inside
    captured: tuple          # Captured per captured tensor (program inputs after the args)
    captured_sources: tuple  # CapturedSource per captured tensor reached by name
    targets: tuple           # Ref per input that gets a gradient, in backward output order
    ops: tuple               # op names of the forward's calls (explain)
    backward: Optional[BackwardProgram]
    # the whole training step (a backward / optimizer.step() inside)
    grad_writes: tuple = ()  # GradWrite per .grad of a tensor from outside the trace changed
    host_guards: tuple = ()  # (fn, expected, description): branches on hyperparameters
    host_effects: tuple = () # fn(): host-side state updates run before each call's program
    freed: bool = False      # a backward inside freed the graph: outputs raise on backward

    @property
    def inputs(self) -> list[Value]:
        return self.forward.inputs
