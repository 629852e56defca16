"""The op registry: every differentiable operation is defined once, here and in the family
modules beside it, as an ``Op`` (impl on jax arrays + VJP rule in tracegrad ops).

One ``apply`` serves eager execution and tracing: it computes the output value (``op.impl``
on jax arrays, or an IR node while a tracer is active) and, when grad mode is on and an input
requires grad, attaches an ``OpNode`` as the output's ``grad_fn``. The same VJP rule then
serves eager backward (under no_grad), create_graph (recorded), gradgradcheck and the
compiler (which runs the rule on IR values to generate the backward program).

VJP rules take ``(g, *inputs, out=..., **params)`` and return the gradient for one input
(a tuple of rules, one per input) or for all inputs (``vjp_all``). Gradients may come back
in the broadcast shape: ``OpNode`` reduces them to each input's shape once (``unbroadcast``) and
casts them to its dtype, so no rule undoes broadcasting itself.
"""
from __future__ import annotations

import dis
import inspect
import types
import zlib

import jax

import numpy as np

from .. import _creation
from .. import _dtype as D
from .._errors import FREED_GRAPH_MSG, SCALAR_TYPE_NAME
from .._graph import Node, SavedTensor, gradient_edge as _edge
from .._state import STATE
from .._tensor import _GF, _RG, Tensor as _Tensor, _Storage, _ViewData, _ViewTensor

_VIEWS = None  # the ops/_views module, which builds on this one (set when it is imported)

__all__ = ["Op", "REGISTRY", "register", "apply", "apply_inplace", "OpNode", "Sample", "Const",
           "unbroadcast"]

REGISTRY: dict[str, "Op"] = {}


_META_ATTRS = frozenset({"shape", "ndim", "dtype", "device"})


def _reads(fn, names):
    """Which of ``names`` the rule ``fn`` reads, and how: ``{name: "full" | "meta"}``
    (bytecode scan, nested functions included). "meta" means only ``.shape``, ``.ndim``,
    ``.dtype`` or ``.device`` is read.

    This is how an op says what to save for backward without saying it twice: ``mul``'s rule
    for ``x`` reads ``y``, so ``2 * a`` saves only the 2, and ``sum``'s rule reads only
    ``x.shape``, so ``x.sum()`` keeps no reference to ``x``'s values -- as PyTorch does.
    """
    found = {}

    def scan(code):
        ins = list(dis.get_instructions(code))
        for k, i in enumerate(ins):
            if i.opname.startswith("LOAD_FAST") or i.opname in ("LOAD_DEREF", "LOAD_CLOSURE"):
                val = i.argval
                for n in (val if isinstance(val, tuple) else (val,)):
                    if n not in names:
                        continue
                    nxt = ins[k + 1] if k + 1 < len(ins) else None
                    meta = (not isinstance(val, tuple) and i.opname != "LOAD_CLOSURE"
                            and nxt is not None and nxt.opname == "LOAD_ATTR"
                            and nxt.argval in _META_ATTRS)
                    if not meta or found.get(n) == "full":
                        found[n] = "full"
                    else:
                        found[n] = "meta"
        for c in code.co_consts:
            if isinstance(c, types.CodeType):
                scan(c)

    scan(fn.__code__)
    return found


class Meta:
    """What a rule sees of an input it reads only for ``.shape``/``.dtype``/``.device``."""

    __slots__ = ("shape", "dtype", "device")

    def __init__(self, t):
        self.shape, self.dtype, self.device = t.shape, t.dtype, t.device

    @property
    def ndim(self):
        return len(self.shape)


class Op:
    """One registered operation.

    name       registry key (``"mul"``)
    impl       ``impl(*values, **params)`` on jax arrays (values may be Python scalars)
    vjp        tuple of per-input rules ``rule(g, *inputs, out, **params)`` (``None`` = no grad)
    vjp_all    alternative: one rule returning a gradient per input (variadic ops like ``cat``)
    grad_name  PyTorch's grad_fn name (``"MulBackward0"``) or ``f(params, inputs) -> str``
    promote    ``"all"``: inputs cast to PyTorch's result dtype; ``"float"``: ints go to the
               default float dtype as well; ``None``: no promotion
    samples    ``[Sample(...), ...]``: inputs for the tests generated from the registry
    eager_jit  ``False`` keeps ``impl`` out of the eager jit cache (see ``_eager``), for an
               impl that must see concrete values or place data itself
    aten       the name PyTorch's profiler gives the op (default ``"aten::" + name``)
    """

    def __init__(self, name, impl, *, vjp=None, vjp_all=None, grad_name=None, promote=None,
                 promote_from=0, samples=None, differentiable=True, twice_differentiable=True,
                 tol=None, domain=None, public=None, eager_jit=True, aten=None):
        self.name = name
        self.aten = aten or "aten::" + name
        self.impl = impl
        if vjp is not None and not isinstance(vjp, tuple):
            vjp = (vjp,)
        self.vjp = vjp
        self.vjp_all = vjp_all
        self.differentiable = differentiable and (vjp is not None or vjp_all is not None)
        self.grad_name = grad_name or (_camel(name) + "Backward0")
        self.promote = promote
        self.promote_from = promote_from
        self.public = public  # the user-facing function (set by the family factory)
        self.samples = samples
        self.twice_differentiable = twice_differentiable
        self.tol = tol or {}
        self.domain = domain
        self._node_cls = None
        self._jit_cache = {} if eager_jit else None
        self._jit_impl = impl  # the impl the cache serves (a replaced impl runs op by op)
        self._jit_after = None  # calls of a key before it is jitted (set by _fuses on first use)
        self._save_plans = {}  # needs -> what a node saves (see _save_plan)
        self._analyse()

    def _analyse(self):
        # What each rule reads: input positions and whether it reads the output.
        self.reads = None
        rules = self.vjp if self.vjp is not None else ((self.vjp_all,) if self.vjp_all else ())
        self.rule_reads = []
        for rule in rules:
            if rule is None:
                self.rule_reads.append(({}, False, None, 0))
                continue
            params = list(inspect.signature(rule).parameters.values())
            pos = [p.name for p in params[1:] if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            var = [p.name for p in params if p.kind is p.VAR_POSITIONAL]
            kw = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
            has_varkw = any(p.kind is p.VAR_KEYWORD for p in params)
            if "out" not in kw and not has_varkw:
                raise TypeError(f"op {self.name!r}: VJP rule must take the keyword-only argument "
                                f"'out' (write it as lambda g, x, *, out: ...)")
            read = _reads(rule, set(pos) | set(var) | {"out"})
            idx = {i: read[n] for i, n in enumerate(pos) if n in read}
            var_read = read.get(var[0]) if var else None
            self.rule_reads.append((idx, "out" in read, var_read, len(pos)))

    def node_class(self):
        if self._node_cls is None:
            self._node_cls = type(self.grad_name if isinstance(self.grad_name, str) else "OpBackward",
                                  (OpNode,), {"__slots__": ()})
        return self._node_cls

    def tolerance(self, default):
        """A test tolerance ``{"rtol": .., "atol": ..}``, widened (never narrowed) by ``tol``."""
        return {k: max(v, self.tol.get(k, 0.0)) for k, v in default.items()}

    def __repr__(self):
        return f"<op {self.name}>"

    def __call__(self, *args, **params):
        return apply(self, *args, **params)


class Sample:
    """One test input of an op. Each positional arg is a shape tuple (a random float tensor in
    ``op.domain`` that requires grad) or ``Const(value)`` (a Python scalar, or an array turned
    into a tensor that does not require grad). ``call(*args, **kwargs)`` defaults to
    ``op.public``."""

    def __init__(self, *args, call=None, **kwargs):
        self.args, self.call, self.kwargs = args, call, kwargs

    def __repr__(self):
        kw = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"{', '.join(map(repr, self.args))}{kw}"

    def shapes(self):
        """The shapes of the tensor arguments, in order (the ``Const`` ones left out)."""
        return [a for a in self.args if not isinstance(a, Const)]

    def random_arrays(self, domain, seed):
        """Float64 arrays for the shape arguments, uniform in ``domain`` (default (-2, 2));
        ``seed`` is an int or a string (hashed, so each test names its own stream)."""
        lo, hi = domain or (-2.0, 2.0)
        rng = np.random.default_rng(zlib.crc32(seed.encode()) if isinstance(seed, str) else seed)
        return [rng.uniform(lo, hi, s) for s in self.shapes()]

    def arguments(self, arrays, *, dtype=None, requires_grad=True, lib=None, float_consts=None):
        """The call's positional arguments: a tensor of ``dtype`` (default float64) from each of
        ``arrays`` in turn for the shape args, and each ``Const`` as its Python scalar or a
        tensor that does not require grad (cast to ``float_consts`` if floating and given).
        ``lib`` is tracegrad (the default) or torch, so one sample serves comparisons."""
        make = _creation.tensor if lib is None else lib.tensor
        if dtype is None:
            dtype = D.float64 if lib is None else lib.float64
        it = iter(arrays)
        out = []
        for a in self.args:
            if not isinstance(a, Const):
                out.append(make(next(it), dtype=dtype, requires_grad=requires_grad))
            elif isinstance(a.value, (list, tuple, np.ndarray)):
                t = make(a.value)
                out.append(t.to(float_consts) if float_consts is not None and t.is_floating_point() else t)
            else:
                out.append(a.value)
        return out


class Const:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return f"Const({self.value!r})"


def _camel(name):
    return "".join(p.capitalize() for p in name.split("_"))


def register(op: Op) -> Op:
    if op.name in REGISTRY:
        raise ValueError(f"op {op.name!r} is registered twice")
    REGISTRY[op.name] = op
    return op


class OpNode(Node):
    """grad_fn of a registry op: applies the op's VJP rules to the saved inputs."""

    __slots__ = ("op", "params", "saved", "saved_out", "needs", "in_meta", "_freed", "_named")

    def name(self):
        if self._named is not None:
            return self._named
        return type(self).__name__

    def apply(self, grad_outputs):
        g = grad_outputs[0]
        if self._freed:
            raise RuntimeError(FREED_GRAPH_MSG)
        graph = STATE.grad_enabled  # create_graph: the rules' own ops are recorded
        saved = self.saved
        inputs = [None if s is None else (s.unpack(self, graph) if type(s) is SavedTensor else s)
                  for s in saved]
        out = self.saved_out.unpack(self, graph) if self.saved_out is not None else None
        op = self.op
        params = self.params
        if g is None:
            return [None] * len(self.needs)
        if op.vjp_all is not None:
            grads = list(op.vjp_all(g, *inputs, out=out, **params))
        else:
            grads = [rule(g, *inputs, out=out, **params) if need else None
                     for rule, need in zip(op.vjp, self.needs)]
        meta = self.in_meta
        needs = self.needs
        for i, gi in enumerate(grads):
            if gi is None or not needs[i]:
                grads[i] = None
                continue
            shape, dt = meta[i]
            v = gi._data.value  # (what .shape/.dtype read, without building a Size/dtype)
            if v.shape != shape or _FROM_NP.get(v.dtype) is not dt:
                gi = unbroadcast(gi, shape, dt)
            grads[i] = gi
        return grads

    def release(self):
        # Python scalars count as saved too: PyTorch saves them as wrapped-number tensors
        # (only .shape/.dtype metadata is not a saved value: PyTorch keeps sizes, not tensors)
        freed = self.saved_out is not None
        keep = []
        for s in self.saved:
            if s is None or type(s) is Meta:
                keep.append(s)
            else:
                keep.append(None)
                freed = True
        if freed:
            self._freed = True
        self.saved = keep
        self.saved_out = None


# ----------------------------------------------------------------------------- dispatch


def _cast(t, v, d):
    tr = STATE.tracer
    if tr is not None:
        return tr.cast(t, v, d)
    return v.astype(d.np)


def apply(op: Op, *args, **params):
    """Run ``op`` on tensors / Python scalars, recording autograd history when needed."""
    prof = STATE.profiler
    if prof is not None:
        with prof.op_range(op, args):
            return _apply(op, args, params)
    return _apply(op, args, params)


def _apply(op, args, params):
    Tensor = _Tensor
    vals = []
    device = None
    promote = op.promote
    pf = op.promote_from
    if promote is not None:
        dt = _common_dtype(args[pf:] if pf else args)  # the usual case: one dtype, no scalars
        if dt is None:
            dt = D.result_type(*args[pf:]) if pf else D.result_type(*args)
        if promote == "float" and dt.category != D.FLOATING:
            dt = D.get_default_dtype()
        dnp = dt.np
    first = None
    mixed = False
    tracer = STATE.tracer
    sig = []  # eager: how each value enters the jitted impl (see _eager)
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            v = a._data.value
            cast = None
            if promote is not None and i >= pf and (vd := v.dtype) is not dnp and vd != dnp:
                if tracer is None:
                    cast = dt.np  # done inside the jitted impl: one dispatch, not two
                else:
                    v = _cast(a, v, dt)
            if first is None:
                first, device = a, a._device
            elif a._device is not device and a._device != device:
                device, first = _mixed_device(op, first, a)
                mixed = True
            vals.append(v)
            sig.append(cast)
        else:
            if isinstance(a, np.generic):  # a numpy scalar is a Python number here, as in PyTorch
                a = a.item()
            vals.append(a)
            sig.append(_FLOAT if a.__class__ is float else (a.__class__, a))
    if mixed and tracer is None:  # a 0-dim cpu tensor joins tensors on another device
        jd = device.jax_device()
        vals = [jax.device_put(v, jd) if isinstance(a, Tensor) and a._device != device else v
                for a, v in zip(args, vals)]
    if tracer is None:
        try:
            out_val = _eager(op, vals, params, sig)
        except (ValueError, TypeError):
            _check_broadcast(args)  # PyTorch's RuntimeError when the shapes don't broadcast
            raise
    else:
        out_val = tracer.record(op, args, vals, params)
    out = Tensor._make(out_val, device)
    if op.differentiable and STATE.grad_enabled:
        needs = [isinstance(a, Tensor) and a._rg for a in args]
        if True in needs and out.dtype.category == D.FLOATING:  # integer/bool results carry no gradient
            _attach_node(op, args, params, out, needs)
            if tracer is not None:  # the backward program cites the user's forward line
                out.grad_fn.metadata["loc"] = out_val.node.loc  # and names g_<value>
                out.grad_fn.metadata["value"] = out_val
    return out


# ----------------------------------------------------------------------------- eager jit cache
#
# JAX runs an un-jitted jnp/lax call through its Python dispatch path, and a multi-primitive
# impl (a cast plus the op, sum_to's reshape + broadcast, ...) dispatches each primitive in
# turn. A jitted function takes the C++ fast path and runs the whole impl as one executable,
# which costs a few microseconds. So once the same (op, argument signature, params) has been
# seen _JIT_AFTER times, its impl -- with the input casts -- is jitted and reused.
#
# The signature keeps what jit cannot see as a static part of the key: Python ints, bools,
# None and other non-float constants (jnp.power takes a different, exact path for a concrete
# int exponent), the params, and the dtype each input is cast to. Python floats stay dynamic
# (a learning rate that changes every step must not recompile). Keys seen only once or twice
# (x[i] in a loop over i) never compile. A jitted impl that fails is re-run op by op: a user
# error is raised from there, as without the cache; otherwise the key is marked un-jittable.
#
# Jitting must not change results. It cannot for an impl that is one arithmetic step
# (jnp.multiply, a reshape + sum, a gather, ...), but XLA fuses several steps into one loop,
# and fused, a * b + c becomes an FMA and exp(x - m) / s may round differently: the third
# call would differ in the low bits from the first two. So an impl of two or more
# arithmetic steps (softmax, add_scaled's x + a * y, ...) is jitted from its first call
# (_fuses decides, once per op, from the impl's jaxpr): every call of a key then runs the
# same executable, and results stay bitwise reproducible.

EAGER_JIT = True   # False: every impl runs op by op (for debugging and benchmarks)
_JIT_AFTER = 2     # calls with the same key before its impl is jitted
_JIT_MAX = 256     # keys remembered per op; beyond that, new keys run op by op
_FLOAT = object()  # signature entry of a Python float (a dynamic argument)


def _eager(op, vals, params, sig):
    cache = op._jit_cache
    if cache is not None and EAGER_JIT and op.impl is op._jit_impl:
        try:
            key = (*sig, *[(k, v.__class__, v) for k, v in params.items()]) if params \
                else tuple(sig)
            hit = cache.get(key, 0)
        except TypeError:  # an unhashable constant or param: run op by op
            hit = False
        if hit.__class__ is int:
            after = op._jit_after
            if after is None:
                after = op._jit_after = 1 if _fuses(op, sig, params, vals) else _JIT_AFTER
            if hit + 1 < after:
                if len(cache) < _JIT_MAX:
                    cache[key] = hit + 1
            elif len(cache) < _JIT_MAX or key in cache:
                hit = cache[key] = _jit(op, sig, params)
        if hit.__class__ is tuple:
            fn, pos = hit
            try:
                return fn(*vals) if pos is None else fn(*[vals[i] for i in pos])
            except Exception:  # noqa: BLE001 - re-run below, outside this handler
                pass
            out = _direct(op, vals, params, sig)  # raises the user's error, if it is one
            cache[key] = False
            return out
    return _direct(op, vals, params, sig)


def _direct(op, vals, params, sig):
    for i, s in enumerate(sig):
        if s is not None and s is not _FLOAT and s.__class__ is not tuple:
            vals[i] = vals[i].astype(s)
    return op.impl(*vals, **params)


def _jit(op, sig, params):
    """``(jitted impl over the dynamic values, their positions or None for all)``."""
    import jax
    run, pos = _wrapper(op, sig, params)
    return jax.jit(run), pos


def _wrapper(op, sig, params):
    """``(impl as a function of the dynamic values only, their positions or None)``."""
    impl = op.impl
    template = [s[1] if s.__class__ is tuple else None for s in sig]
    pos = [i for i, s in enumerate(sig) if s.__class__ is not tuple]
    casts = [(i, s) for i, s in enumerate(sig)
             if s is not None and s is not _FLOAT and s.__class__ is not tuple]

    def run(*dyn):
        full = list(template)
        for i, v in zip(pos, dyn):
            full[i] = v
        for i, d in casts:
            full[i] = full[i].astype(d)
        return impl(*full, **params)

    run.__name__ = run.__qualname__ = op.name
    return run, (None if len(pos) == len(sig) else pos)


# primitives that compute exactly (data movement, comparisons, selection, min/max, casts):
# fusing them with anything rounds nothing differently
_EXACT = frozenset("""
    convert_element_type reshape broadcast_in_dim squeeze expand_dims transpose slice
    dynamic_slice dynamic_update_slice gather concatenate copy copy_p select_n pad rev iota
    eq ne lt le gt ge and or not xor max min abs neg sign floor ceil round clamp argmax argmin
    reduce_max reduce_min reduce_and reduce_or stop_gradient optimization_barrier is_finite
    split device_put scatter sort""".split())


def _fuses(op, sig, params, vals):
    """Whether ``op``'s impl takes two or more arithmetic steps that eager execution runs
    separately (so that XLA could fuse them when jitted)."""
    import jax
    run, pos = _wrapper(op, sig, params)
    try:
        jaxpr = jax.make_jaxpr(run)(*(vals if pos is None else [vals[i] for i in pos]))
    except Exception:  # noqa: BLE001 - not traceable: it will not be jitted either
        return False
    return _steps(jaxpr.jaxpr) >= 2


def _steps(jaxpr):
    """Arithmetic steps an eager run dispatches separately: a nested jit is one step (it runs
    as one executable eagerly too); a custom_jvp/vjp call runs its body op by op."""
    n = 0
    for e in jaxpr.eqns:
        name = e.primitive.name
        inner = [getattr(v, "jaxpr", v) for v in e.params.values()
                 if hasattr(v, "eqns") or hasattr(getattr(v, "jaxpr", None), "eqns")]
        if name in ("pjit", "jit"):
            n += 1 if any(_steps(j) for j in inner) else 0
        elif inner:
            n += sum(_steps(j) for j in inner)
        elif name not in _EXACT:
            n += 1
    return n


def _check_broadcast(args):
    shape = ()
    for t in args:
        if not isinstance(t, _Tensor):
            continue
        s = tuple(t.shape)
        n = max(len(shape), len(s))
        a, b = (1,) * (n - len(shape)) + shape, (1,) * (n - len(s)) + s
        for i in range(n - 1, -1, -1):
            if a[i] != b[i] and a[i] != 1 and b[i] != 1:
                raise RuntimeError(f"The size of tensor a ({a[i]}) must match the size of tensor b "
                                   f"({b[i]}) at non-singleton dimension {i}")
        shape = tuple(y if x == 1 else x for x, y in zip(a, b))


def _common_dtype(args):
    """The dtype of ``args`` when all are tensors of one dtype (else None: use result_type)."""
    d = None
    for a in args:
        if not isinstance(a, _Tensor):
            return None
        vd = a._data.value.dtype
        if d is None:
            d = vd
        elif vd is not d and vd != d:
            return None
    return _FROM_NP.get(d)


_FROM_NP = D._FROM_NP


def _mixed_device(op, a, b):
    # a 0-dim cpu tensor may be used with tensors on another device, as in PyTorch
    if b.ndim == 0 and b._device.type == "cpu":
        return a._device, a
    if a.ndim == 0 and a._device.type == "cpu":
        return b._device, b
    raise RuntimeError(
        f"Expected all tensors to be on the same device, but found at least two devices, "
        f"{a._device} and {b._device}! (in op '{op.name}'; move them with .to(device))")


def _attach_node(op, args, params, out, needs):
    Tensor = _Tensor
    cls = op._node_cls or op.node_class()
    node = cls.__new__(cls)
    Node.__init__(node, tuple([_edge(a) if isinstance(a, Tensor) else _NO_EDGE for a in args]))
    node.op = op
    node.params = params
    node._freed = False
    gn = op.grad_name
    node._named = None if gn.__class__ is str else gn(params, args)
    key = tuple(needs)
    plan = op._save_plans.get(key)
    if plan is None:
        plan = op._save_plans[key] = _save_plan(op, needs, len(args))
    needs, read, read_out = plan
    node.needs = needs
    node.saved = [None if kind is None else _save(a, kind) for a, kind in zip(args, read)]
    out._rg = True  # (the caller checked the dtype is floating point)
    out.grad_fn = node
    node.saved_out = SavedTensor(out, is_output=True) if read_out else None
    node.in_meta = [(a._data.value.shape, a.dtype) if n else None for a, n in zip(args, needs)]


_NO_EDGE = (None, 0)


def _save_plan(op, needs, nargs):
    """``(needs, read, read_out)`` for inputs that require grad as in ``needs``: which
    gradients are computed, what is saved of each input (None, "full" or "meta", from the
    rules that will run) and whether the output is saved. Made once per op and pattern."""
    if op.vjp_all is not None:
        idx, read_out, read_var, npos = op.rule_reads[0]
        read = dict(idx)
        if read_var:
            read.update(dict.fromkeys(range(npos, nargs), read_var))
    else:
        needs = [n and rule is not None for n, rule in zip(needs, op.vjp)]
        read, read_out = {}, False
        for need, (idx, ro, _, _) in zip(needs, op.rule_reads):
            if need:
                for i, kind in idx.items():
                    if read.get(i) != "full":
                        read[i] = kind
                read_out = read_out or ro
    return tuple(needs), [read.get(i) for i in range(nargs)], read_out


def _save(a, kind):
    if kind is None:
        return None
    if not isinstance(a, _Tensor):
        return a
    return SavedTensor(a) if kind == "full" else Meta(a)


_LEAF_INPLACE = ("a leaf Variable that requires grad is being used in an in-place operation. "
                 "(Wrap the update in `with torch.no_grad():`, or use an out-of-place op.)")
_VIEW_OF_LEAF = "a view of a leaf Variable that requires grad is being used in an in-place operation."
_OVERLAP = ("unsupported operation: more than one element of the written-to tensor refers to a "
            "single memory location. Please clone() the tensor before performing the operation.")


def apply_inplace(op: Op, self, *args, **params):
    """``self.op_(...)``: compute out of place, then rebind ``self`` to the result, bump its
    version, and make its history the new node's (PyTorch's rebase_history). Through a view,
    the result is written into the base's storage, and the base's history is rebased onto a
    ``CopySlices`` node (see ``_inplace_view``)."""
    data = self._data
    isview = data.__class__ is _ViewData
    if STATE.grad_enabled:
        if self.__class__ is _ViewTensor:
            _check_view_inplace(self, args)
        elif self._rg and self.grad_fn is None:
            raise RuntimeError(_LEAF_INPLACE)
    if isview:
        for s, st in zip(data.size, data.stride):
            if st == 0 and s > 1:
                raise RuntimeError(_OVERLAP)
    out = _apply(op, (self,) + args, params) if STATE.profiler is None else apply(op, self, *args, **params)
    if out.shape != self.shape:
        raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast "
                           f"shape {list(out.shape)}")
    if out.dtype is not self.dtype:
        if out.dtype.category > self.dtype.category:  # PyTorch's canCast: no float->int->bool
            raise RuntimeError(f"result type {SCALAR_TYPE_NAME[out.dtype.name]} can't be cast to the "
                               f"desired output type {SCALAR_TYPE_NAME[self.dtype.name]}")
        out = out.to(self.dtype)
    if isview:
        node = _inplace_view(self, data, out)
    else:
        if STATE.tracer is not None:  # remember the tensor as it was: the compiler writes back
            STATE.tracer.on_mutate(self)
        data.value = out._data.value
        data.version += 1
        node = out.grad_fn
    if node is not None:
        _privatise_all(node, data)
        self.grad_fn = node
        self.requires_grad = True
        self._output_nr = 0
    return self


def _inplace_view(self, data, out):
    """Write ``out`` (the new value of view ``self``) into its base. For an autograd view whose
    result or base has history, the base's new value is ``copy_slices(base, out)`` -- an op,
    so the base's ``grad_fn`` becomes PyTorch's ``CopySlices`` and the view's is regenerated
    from it (``AsStridedBackward0``) when next read. Returns the node for ``self`` (None for a
    view: its grad_fn follows the base's)."""
    V = _VIEWS
    tracer = STATE.tracer
    new = out._data.value
    if tracer is not None:  # the compiler writes the root back; inside, the root is a Value
        root = V._root_tensor(data)
        tracer.on_mutate(root)
        if isinstance(data.storage.value, jax.Array):
            data.storage.value = tracer.value_of(root)
    base = data.base if self.__class__ is _ViewTensor else None
    nb = None
    if base is not None and STATE.grad_enabled and (out.grad_fn is not None or base._rg):
        size, stride, offset = V.base_layout(data, base)
        nb = _apply(V._copy_slices, (base, out), {"size": size, "stride": stride, "offset": offset})
        base._data.value = nb._data.value
    else:
        data.value = new  # a raw write through to the storage
    data.version += 1
    data._src, data._cache = data.storage.value, new
    if nb is not None:
        if nb.grad_fn is not None:
            base.grad_fn = nb.grad_fn
            base._rg = True
            base._output_nr = 0
        _privatise_all(out.grad_fn, data)
    # a detached view shares the data, but its history is its own (set by apply_inplace)
    return out.grad_fn if base is None else None


def _privatise_all(node, data):
    """Inputs saved from `self` keep their old value (PyTorch saves `original_self`): detach
    them from the version counter; the saved output is now `self`."""
    if isinstance(node, OpNode):
        node.saved = [_privatise(s, data) for s in node.saved]
        if node.saved_out is not None:
            node.saved_out.data = data
            node.saved_out.version = data.version


def _check_view_inplace(self, args):
    """PyTorch's check_inplace for a view: views made under no_grad or by a multi-output op
    may not be changed in place when the change is recorded, nor may views of leaves that
    require grad."""
    if not (_RG.__get__(self) or any(isinstance(a, _Tensor) and a._rg for a in args)):
        return
    data = self._data
    cm = data.creation
    if cm is not None:
        gf = _GF.__get__(self)
        if gf is not None:
            name = gf.name()
            short = name[:name.rindex("Backward")] if "Backward" in name else name
            nr = cm[6:] if cm.startswith("multi:") else self._output_nr
            prefix = f"Output {nr} of {short} is a view"
        else:
            prefix = None
        if cm == "no_grad":
            msg = (prefix + " of a view which was created in no_grad mode and is being modified "
                   "inplace with grad mode enabled." if prefix else
                   "A view was created in no_grad mode and is being modified inplace with grad "
                   "mode enabled.")
            raise RuntimeError(msg + " Given that this use case is ambiguous and error-prone, it is "
                               "forbidden. You can clarify your code by moving both the view and "
                               "the inplace either both inside the no_grad block (if you don't "
                               "want the inplace to be tracked) or both outside (if you want the "
                               "inplace to be tracked).")
        msg = (prefix + " and is being modified inplace." if prefix else
               "A view was created in no_grad mode and is being modified inplace with grad mode "
               "enabled.")
        raise RuntimeError(msg + " This view is the output of a function that returns multiple "
                           "views. Such functions do not allow the output views to be modified "
                           "inplace. You should replace the inplace operation by an out-of-place "
                           "one.")
    base = data.base
    if base._rg and base.grad_fn is None:
        raise RuntimeError(_VIEW_OF_LEAF)


def _privatise(s, data):
    if type(s) is SavedTensor and s.data is data:
        s.data = _Storage(s.value)
        s.version = 0
    return s


def unbroadcast(g, shape, dtype):
    """The gradient ``g`` made fit for an input of ``shape`` and ``dtype``: broadcasting undone
    (summed down to ``shape``) and cast to ``dtype``. The one place this is done, for every
    op's rules (``OpNode.apply``) and every custom ``autograd.Function``'s backward. It runs
    ops (``sum_to_size``, found by name: shape.py registers it above this module), so under
    ``create_graph`` and in traces it is recorded like the rule's own ops."""
    if tuple(g._data.value.shape) != tuple(shape):
        g = apply(REGISTRY["sum_to_size"], g, shape=tuple(shape))
    if g.dtype is not dtype:
        g = g.to(dtype)
    return g
