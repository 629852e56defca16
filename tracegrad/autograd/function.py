"""``tracegrad.autograd.Function``: user-defined differentiable operations, as in PyTorch.

    class Exp(tracegrad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            out = x.exp()
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, g):
            out, = ctx.saved_tensors
            return g * out

    y = Exp.apply(x)          # y.grad_fn is an ExpBackward node

How it maps onto the engine: ``ctx`` *is* the backward node (a ``BackwardCFunction``, one
subclass per Function, named ``<Func>Backward``), exactly as in PyTorch, so attributes set
on ``ctx`` in ``forward`` are visible on ``y.grad_fn`` and ``y.grad_fn.saved_tensors`` works.
``forward`` runs under ``no_grad``; the node's ``apply`` calls the user's ``backward``, whose
tracegrad ops are recorded when the engine runs with ``create_graph=True``. Saved tensors are
``SavedTensor`` boxes (version check, freed after a backward without ``retain_graph``).

Nothing here reads a tensor's value or calls jax: only shapes, dtypes and devices. The
compiler traces through ``Function.apply`` by running it on tensors that hold IR values.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import warnings

from .. import _creation as C
from .. import _dtype as D
from .. import _grad_mode as _gm
from .._errors import FREED_GRAPH_MSG
from .._graph import Node, SavedTensor, gradient_edge
from .._state import STATE
from .._tensor import Tensor
from ..ops._registry import unbroadcast

__all__ = ["Function", "FunctionCtx", "BackwardCFunction", "once_differentiable",
           "InplaceFunction", "NestedIOFunction"]


class FunctionCtx:
    """The methods available on ``ctx`` inside ``forward``/``setup_context``/``backward``."""

    def save_for_backward(self, *tensors):
        """Save tensors (or ``None``) for ``backward``; read them back with ``ctx.saved_tensors``.

        Only inputs, outputs and intermediate tensors of ``forward`` may be saved this way
        (other values go on ``ctx`` as plain attributes). A saved tensor that is changed in
        place before ``backward`` makes ``saved_tensors`` raise, as in PyTorch."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {i} "
                                f"is of type {type(t).__name__}")
        self.to_save = tensors

    def save_for_forward(self, *tensors):
        raise NotImplementedError("save_for_forward: tracegrad has no forward-mode AD "
                                  "(Function.jvp is not supported)")

    def mark_dirty(self, *args):
        """Mark tensors that ``forward`` modified in place. Each must also be returned."""
        self.dirty_tensors = args

    def mark_non_differentiable(self, *args):
        """Mark outputs that are not differentiable (e.g. indices): they do not require grad,
        and ``backward`` still receives a gradient for them (zeros, unless
        ``set_materialize_grads(False)``)."""
        self.non_differentiable = args

    def set_materialize_grads(self, value: bool):
        """Whether ``None`` output gradients reach ``backward`` as zero tensors (default
        ``True``) or as ``None``."""
        self.materialize_grads = bool(value)

    # PyTorch spells some of these as attributes with defaults
    to_save = None
    dirty_tensors = ()
    non_differentiable = ()
    materialize_grads = True
    needs_input_grad = ()


class BackwardCFunction(Node, FunctionCtx):
    """The grad_fn of a Function's outputs (and its ``ctx``). One subclass per Function,
    named after it: ``FuncBackward``."""

    _forward_cls = None

    def __init__(self):
        Node.__init__(self, ())
        self._saved = None        # list of SavedTensor / None once forward has returned
        self._freed = False
        self._out_meta = ()       # per forward output: (shape, dtype, device) or None
        self._in_meta = ()        # per forward input: (shape, dtype) or None (non-tensor)
        self.num_outputs = 1

    @property
    def saved_tensors(self):
        """The tensors given to ``save_for_backward``, version-checked. Inside a
        ``create_graph`` backward they carry their history, so ``backward`` is differentiable
        with respect to saved inputs and outputs."""
        if self._freed:
            raise RuntimeError(FREED_GRAPH_MSG)
        if self._saved is None:
            return tuple(self.to_save) if self.to_save is not None else ()
        graph = STATE.grad_enabled
        return tuple(None if s is None else s.unpack(self, graph) for s in self._saved)

    saved_variables = saved_tensors

    def apply(self, grad_outputs):
        cls = self._forward_cls
        user_fn = _backward_fn(cls)
        grads = list(grad_outputs)
        if self.materialize_grads:
            for i, g in enumerate(grads):
                meta = self._out_meta[i]
                if g is None and meta is not None:
                    shape, dtype, device = meta
                    grads[i] = C.zeros(shape, dtype=dtype, device=device)
        result = user_fn(self, *grads)
        return self._check_grads(result)

    def _check_grads(self, result):
        name = self.name()
        if not isinstance(result, tuple):
            result = (result,)
        n_in = len(self._in_meta)
        if len(result) > n_in and all(r is None for r in result[n_in:]):
            result = result[:n_in]
        if len(result) != n_in:
            raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                               f"(expected {n_in}, got {len(result)})")
        out = []
        for i, (g, meta, (nxt, _)) in enumerate(zip(result, self._in_meta, self.next_functions)):
            if meta is None:
                if g is not None:
                    raise RuntimeError(
                        f"function {name} returned a gradient different than None at position "
                        f"{i + 1}, but the corresponding forward input was not a Variable")
                out.append(None)
                continue
            if g is None or nxt is None:
                out.append(None)
                continue
            if not isinstance(g, Tensor):
                raise RuntimeError(f"expected Variable or None (got {type(g).__name__})")
            shape, dtype = meta
            gshape = tuple(g.shape)
            if gshape != shape and not _expandable(shape, gshape):
                raise RuntimeError(
                    f"Function {name} returned an invalid gradient at index {i} - got "
                    f"{list(gshape)} but expected shape compatible with {list(shape)}")
            out.append(unbroadcast(g, shape, dtype))
        return out

    def release(self):
        self._saved = None
        self._freed = True


def _expandable(shape, to):
    """Can a tensor of ``shape`` be broadcast to ``to`` (so ``to`` sums back to ``shape``)?"""
    if len(shape) > len(to):
        return False
    return all(s == 1 or s == t for s, t in zip(reversed(shape), reversed(to)))


def _backward_fn(cls):
    bw, vjp = cls.backward, cls.vjp
    own_bw = bw is not Function.backward
    own_vjp = vjp is not Function.vjp
    if own_bw and own_vjp:
        raise RuntimeError("Implementing both 'backward' and 'vjp' for a custom Function is not "
                           "allowed. You should only implement one of them.")
    return vjp if own_vjp else bw


class Function(FunctionCtx):
    """Base class of user-defined differentiable operations (``torch.autograd.Function``).

    Subclass it with static ``forward`` and ``backward`` and call ``Sub.apply(*args)``:

    >>> import tracegrad as torch
    >>> class Cube(torch.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x ** 3
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         x, = ctx.saved_tensors
    ...         return 3 * x ** 2 * g
    >>> x = torch.tensor([1., 2.], requires_grad=True)
    >>> y = Cube.apply(x)
    >>> y
    tensor([1., 8.], grad_fn=<CubeBackward>)
    >>> y.sum().backward(); x.grad
    tensor([ 3., 12.])

    Two forms, as in PyTorch: ``forward(ctx, *args)``, or ``forward(*args)`` plus
    ``setup_context(ctx, inputs, output)``. ``backward(ctx, *grad_outputs)`` returns one
    gradient (or ``None``) per forward input; extra trailing ``None`` s are allowed.
    """

    _backward_cls = BackwardCFunction

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._backward_cls = type(cls.__name__ + "Backward", (BackwardCFunction,),
                                 {"_forward_cls": cls, "__module__": cls.__module__,
                                  "__qualname__": cls.__qualname__ + "Backward"})

    def __init__(self, *args, **kwargs):
        warnings.warn(
            f"{type(self)} should not be instantiated. Methods on autograd functions are all "
            "static, so you should invoke them on the class itself. Instantiating an autograd "
            "function will raise an error in a future version of PyTorch.",
            DeprecationWarning, stacklevel=2)

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            "Legacy autograd function with non-static forward method is deprecated. Please use "
            "new-style autograd function with static forward method. (Example: "
            "https://pytorch.org/docs/stable/autograd.html#torch.autograd.Function)")

    @staticmethod
    def forward(*args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward mode AD.")

    vjp = backward

    @staticmethod
    def jvp(ctx, *grad_inputs):
        raise NotImplementedError("You must implement the jvp function for custom "
                                  "autograd.Function to use it with forward mode AD (tracegrad "
                                  "has no forward-mode AD).")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` (without recording) and connect its outputs to a
        ``<cls>Backward`` node that calls ``backward``."""
        custom_setup = _has_setup_context(cls)
        if custom_setup:
            args = _bind_default_args(cls.forward, *args, **kwargs)
            kwargs = {}
        ctx = cls._backward_cls()
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx.needs_input_grad = needs
        executable = STATE.grad_enabled and any(needs)
        if executable:
            # edges first: a forward that changes an input in place (mark_dirty) rebases it
            ctx.next_functions = tuple(gradient_edge(a) if n else (None, 0) for a, n in zip(args, needs))
        ctx._in_meta = tuple((tuple(a.shape), a.dtype) if isinstance(a, Tensor) else None
                             for a in args)
        prof = STATE.profiler
        with _gm.no_grad(), (prof.function_range(cls.__name__, args) if prof is not None
                             else contextlib.nullcontext()):  # PyTorch shows a `Func` range
            if custom_setup:
                output = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, output)
            else:
                output = cls.forward(ctx, *args, **kwargs)
        return _wrap_outputs(ctx, args, output, executable)


def _has_setup_context(cls) -> bool:
    return cls.setup_context is not Function.setup_context


def _bind_default_args(func, *args, **kwargs):
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.args


def _wrap_outputs(ctx, args, output, executable):
    """PyTorch's ``_wrap_outputs``: give each tensor output its history (or none)."""
    is_tuple = isinstance(output, tuple)
    outs = output if is_tuple else (output,)
    input_ids = {id(a) for a in args if isinstance(a, Tensor)}
    dirty = {id(t) for t in ctx.dirty_tensors}
    non_diff = {id(t) for t in ctx.non_differentiable}
    out_ids = {id(o) for o in outs if isinstance(o, Tensor)}
    if not dirty <= out_ids:
        raise RuntimeError("Some elements marked as dirty during the forward method were not "
                           "returned as output. The inputs that are modified inplace must all be "
                           "outputs of the Function.")
    for t in ctx.dirty_tensors:  # PyTorch bumps the version of tensors marked dirty
        t._data.version += 1

    ctx.num_outputs = len(outs)
    ctx._out_meta = tuple((tuple(o.shape), o.dtype, o.device) if isinstance(o, Tensor) else None
                          for o in outs)
    results = []
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            results.append(o)
            continue
        is_input = id(o) in input_ids
        is_dirty = id(o) in dirty
        differentiable = (executable and id(o) not in non_diff
                          and o.dtype.category == D.FLOATING)  # floating point only
        if not differentiable:
            if not o.requires_grad:
                if is_input and not is_dirty:
                    o = o.detach()  # an alias of the input, never the input object itself
            elif is_input:
                o = o.detach()
            else:
                o.detach_()
        elif is_dirty:
            if o.grad_fn is None and o.requires_grad:
                raise RuntimeError("a leaf Variable that requires grad has been used in an "
                                   "in-place operation.")
            if not is_input:
                warnings.warn("Only input Tensors should be given to ctx.mark_dirty(). If a "
                              "Tensor is not an input, there is no need to pass it to "
                              "mark_dirty().", stacklevel=3)
            _set_history(o, ctx, i)
        elif is_input:
            o = o.detach()
            _set_history(o, ctx, i)
        else:
            _set_history(o, ctx, i)
        results.append(o)

    if executable:
        to_save = ctx.to_save or ()
        ctx._saved = [None if t is None else SavedTensor(t, is_output=t.grad_fn is ctx)
                      for t in to_save]
        ctx.to_save = None
    return tuple(results) if is_tuple else results[0]


def _set_history(t, node, output_nr):
    t.grad_fn = node
    t._output_nr = output_nr
    t._rg = True


# ----------------------------------------------------------------------------- once_differentiable

class Error(Node):
    """The grad_fn of a ``once_differentiable`` backward's outputs: differentiating it again
    raises (PyTorch's ``torch::autograd::Error``)."""

    def __init__(self, msg, next_functions):
        super().__init__(next_functions)
        self.msg = msg

    def apply(self, grad_outputs):
        raise RuntimeError(self.msg)


_ONCE_MSG = "trying to differentiate twice a function that was marked with @once_differentiable"


def once_differentiable(fn):
    """Decorate a ``backward`` that cannot itself be differentiated: it runs without
    recording, and a later attempt to differentiate through its result raises
    ``RuntimeError`` (instead of silently returning a wrong second derivative)."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with _gm.no_grad():
            outputs = fn(ctx, *args)
        if not _gm.is_grad_enabled():
            return outputs
        if not any(isinstance(a, Tensor) and a.requires_grad for a in args):
            return outputs
        tup = outputs if isinstance(outputs, tuple) else (outputs,)
        fake = []
        edges = []
        for v in tup:
            if isinstance(v, Tensor):
                v = v.detach()
                v.requires_grad = True
                edges.append((v._accumulator(), 0))
            fake.append(v)
        node = Error(_ONCE_MSG, tuple(edges))
        res = []
        for i, v in enumerate(fake):
            if isinstance(v, Tensor):
                v = v.detach()
                _set_history(v, node, i)
            res.append(v)
        node.num_outputs = len(res)
        return tuple(res) if isinstance(outputs, tuple) else res[0]

    return wrapper


class InplaceFunction(Function):
    """A Function with an ``inplace`` flag (kept for PyTorch compatibility)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace


class NestedIOFunction(Function):
    """Legacy PyTorch class; not supported (use a static-method Function)."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError("NestedIOFunction is a legacy PyTorch API that tracegrad does not "
                           "support; write a Function with static forward/backward instead.")
