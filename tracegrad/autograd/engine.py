"""The backward engine: ``backward()`` and ``grad()``.

Like PyTorch's: dependencies are counted from the roots; a node runs when every gradient
for it has arrived, the most recently created ready node first (so shared subgraphs and
diamonds see their summed gradient once); tensor hooks run on a gradient before its node;
AccumulateGrad adds into ``.grad``; saved values are freed after use unless retain_graph.

The engine only ever calls ``node.apply`` and tracegrad ops, so the same code runs on IR
values when the compiler derives a backward program from a traced forward.
"""
from __future__ import annotations

import heapq
import itertools

from .. import _creation as C
from .._graph import AccumulateGrad, Node, accumulate_grad
from .._state import STATE
from .._tensor import Tensor

__all__ = ["backward", "grad", "run_backward", "GraphRoot", "is_implicit_ones"]


class GraphRoot(Node):
    """Feeds the given output gradients into the graph (one edge per output tensor)."""

    __slots__ = ("grads",)

    def __init__(self, edges, grads):
        super().__init__(tuple(edges))
        self.grads = grads
        self._seq = float("inf")

    def apply(self, grad_outputs):
        return list(self.grads)


def _as_tuple(x):
    if x is None:
        return None
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _root_edge(t, i):
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    if t.requires_grad:
        return (t._accumulator(), 0)
    raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")


_ONES = {}  # (shape, dtype, device) -> jax array of ones


def _implicit_ones(t):
    """The implicit gradient of a one-element output, made once per (shape, dtype, device)
    and shared: jax arrays are immutable and each call gets its own Tensor box, so sharing is
    safe, and it saves an eager array creation on every ``loss.backward()``."""
    v = t._data.value
    key = (v.shape, v.dtype, t._device)
    a = _ONES.get(key)
    if a is None:
        ones = C.ones_like(t)
        if STATE.tracer is not None:  # keep the cache to concrete arrays
            return ones
        a = _ONES[key] = ones._data.value
    return Tensor._make(a, t._device)


def is_implicit_ones(g) -> bool:
    """Whether ``g`` is the implicit gradient ``_implicit_ones`` made (``loss.backward()``),
    not a gradient the caller passed or a hook returned: the shared array, by identity."""
    v = g._data.value
    return _ONES.get((v.shape, v.dtype, g._device)) is v


def _make_grads(outputs, grads, is_grads_batched=False):
    if grads is None and len(outputs) == 1:  # loss.backward(): the loop below, for one output
        t = outputs[0]
        if not t.requires_grad:
            return [None]
        if t.numel() != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return [_implicit_ones(t)]
    if grads is None:
        grads = (None,) * len(outputs)
    else:
        grads = _as_tuple(grads)
    if len(grads) != len(outputs):
        raise RuntimeError(f"got {len(grads)} tensors in grad_tensors/grad_outputs but "
                           f"{len(outputs)} outputs; give one gradient per output")
    out = []
    for i, (t, g) in enumerate(zip(outputs, grads)):
        if g is None:
            if t.requires_grad and t.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            out.append(_implicit_ones(t) if t.requires_grad else None)
            continue
        if not isinstance(g, Tensor):
            g = C.tensor(g, dtype=t.dtype, device=t.device)
        if tuple(g.shape) != tuple(t.shape):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and "
                               f"output[{i}] has a shape of {t.shape}.")
        if g.dtype.category != t.dtype.category:
            raise TypeError(f"For complex Tensors, both grad_output and output are required to "
                            f"have the same dtype. Mismatch in dtype: grad_output[{i}] has a dtype "
                            f"of {g.dtype} and output[{i}] has a dtype of {t.dtype}.")
        out.append(g)
    return out


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             grad_variables=None, inputs=None):
    """Accumulate gradients of ``tensors`` into the ``.grad`` of graph leaves (or of ``inputs``).

    The graph is freed afterwards unless ``retain_graph`` (default: ``create_graph``); with
    ``create_graph=True`` the gradients themselves are recorded, for higher derivatives.
    """
    tracer = STATE.tracer
    if tracer is not None:  # in a compiled function: derived into the program (the compiler's)
        tracer.on_backward(create_graph, inputs)
    if grad_variables is not None:
        grad_tensors = grad_variables
    tensors = _as_tuple(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = _as_tuple(inputs)
        if len(inputs) == 0:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        for t in inputs:  # as PyTorch: a non-leaf input keeps its .grad (t.retains_grad)
            if t.grad_fn is not None:
                t.retain_grad()
    for i, t in enumerate(tensors):
        _root_edge(t, i)
    grads = _make_grads(tensors, grad_tensors)
    if inputs is None and len(tensors) == 1 and _run_one_node(tensors[0], grads[0], retain_graph,
                                                                create_graph):
        return
    run_backward(tensors, grads, retain_graph, create_graph, inputs, accumulate=True)
    if tracer is not None:
        tracer.backward_done(retain_graph)


def _plain(node):
    return (node._pre_hooks is None and node._post_hooks is None and not node._tensor_pre_hooks
            and not node._retains_grad)


def _run_one_node(t, g, retain_graph, create_graph):
    """backward() of a graph that is one node over leaves -- ``loss.backward()`` of a compiled
    call, whose ``CompiledFunctionBackward`` feeds only AccumulateGrads -- without the
    general walk. Runs only where the general engine would do exactly this (no hooks,
    retain_grad, profiler or tracer, each leaf reached once); returns False otherwise."""
    node = t.grad_fn
    if node is None or g is None or not _plain(node) or STATE.tracer is not None \
            or STATE.profiler is not None:
        return False
    seen = set()
    for nxt, _ in node.next_functions:
        if nxt is None:
            continue
        if type(nxt) is not AccumulateGrad or nxt in seen or not _plain(nxt) or nxt.variable._hooks:
            return False
        seen.add(nxt)
    prev_mode = STATE.grad_enabled
    STATE.grad_enabled = create_graph
    try:
        gs = [None] * node.num_outputs
        gs[t._output_nr] = g
        outs = node.apply(gs)
        if not retain_graph:
            node.release()
        for (nxt, _), go in zip(node.next_functions, outs):
            if nxt is not None and go is not None:
                nxt.apply([go])
    finally:
        STATE.grad_enabled = prev_mode
    return True


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """Gradients of ``outputs`` w.r.t. ``inputs`` (leaves or not), returned as a tuple;
    ``.grad`` attributes are left untouched."""
    if is_grads_batched:
        raise NotImplementedError("autograd.grad(is_grads_batched=True) needs vmap, which tracegrad "
                                  "does not have: loop over the batch of grad_outputs instead")
    outputs = _as_tuple(outputs)
    inputs_t = _as_tuple(inputs)
    if allow_unused is None:
        allow_unused = materialize_grads
    if not allow_unused and materialize_grads:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, "
                         "but got: allow_unused=False.")
    if retain_graph is None:
        retain_graph = create_graph
    for i, t in enumerate(inputs_t):
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    for i, t in enumerate(outputs):
        _root_edge(t, i)
    grads = _make_grads(outputs, grad_outputs)
    res = run_backward(outputs, grads, retain_graph, create_graph, inputs_t, accumulate=False)
    out = []
    for t, r in zip(inputs_t, res):
        if r is None:
            if materialize_grads:
                r = C.zeros_like(t)
            elif not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been used "
                                   "in the graph. Set allow_unused=True if this is the desired behavior.")
        out.append(r)
    return tuple(out)


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _run_tensor_hooks(hooks, g):
    tracer = STATE.tracer
    for h in list(hooks.values()):
        r = h(g) if tracer is None else tracer.hook(h, g)
        if r is not None:
            if tuple(r.shape) != tuple(g.shape):
                raise RuntimeError(f"hook '{getattr(h, '__name__', h)}' has changed the size of "
                                   f"value: expected {list(g.shape)}, got {list(r.shape)}")
            g = r
    return g


def _reaching(order, targets):
    """The nodes of ``order`` from which a node of ``targets`` can be reached (targets
    included): one walk backwards from the targets over reversed edges, so each edge is
    looked at a bounded number of times -- linear in the graph, as PyTorch's engine."""
    parents = {}
    for node in order:
        for nxt, _ in node.next_functions:
            if nxt is not None:
                ps = parents.get(nxt)
                if ps is None:
                    parents[nxt] = [node]
                else:
                    ps.append(node)
    reach = set(targets)
    stack = list(reach)
    while stack:
        for p in parents.get(stack.pop(), ()):
            if p not in reach:
                reach.add(p)
                stack.append(p)
    return reach


def run_backward(tensors, grads, retain_graph, create_graph, inputs=None, accumulate=True):
    """Core loop. Returns the captured gradient for each of ``inputs`` when not accumulating."""
    root = GraphRoot([_root_edge(t, i) for i, t in enumerate(tensors)], grads)

    # where to capture / which nodes must run
    capture = {}  # node -> [(output_nr, input index)]
    if inputs is not None:
        for k, t in enumerate(inputs):
            key = (t.grad_fn, t._output_nr) if t.grad_fn is not None else (t._accumulator(), 0)
            capture.setdefault(key[0], []).append((key[1], k))

    # dependency counts over the nodes that must run (all, or those reaching a target)
    deps = {}
    order = []
    seen = {root}
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        for nxt, _ in node.next_functions:
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    if inputs is not None:
        # reach: nodes from which a capture point can be reached; execute: nodes that must run
        # (a capture point itself runs only if another target lies beyond it, or it is an
        # AccumulateGrad that backward(inputs=...) must run)
        reach = _reaching(order, capture)
        execute = {n for n in reach if any(c in reach for c, _ in n.next_functions)}
        if accumulate:
            execute |= {n for n in capture if type(n) is AccumulateGrad}
    else:
        reach = execute = None
    for node in order:
        if execute is not None and node not in execute:
            continue
        for nxt, _ in node.next_functions:
            if nxt is not None and (reach is None or nxt in reach):
                deps[nxt] = deps.get(nxt, 0) + 1

    results = [None] * (len(inputs) if inputs is not None else 0)
    buffers = {}
    tie = itertools.count()
    heap = [(-root._seq, next(tie), root)]
    prev_mode = STATE.grad_enabled
    STATE.grad_enabled = create_graph
    prof = STATE.profiler
    try:
        while heap:
            _, _, node = heapq.heappop(heap)
            n_out = node.num_outputs
            gs = buffers.pop(node, None) or [None] * n_out
            if STATE.tracer is not None:  # deriving a compiled backward: cite the forward line
                STATE.tracer.loc = node._metadata.get("loc") if node._metadata else None
            if node._tensor_pre_hooks:
                for nr, hooks in node._tensor_pre_hooks.items():
                    if gs[nr] is not None and hooks:
                        gs[nr] = _run_tensor_hooks(hooks, gs[nr])
            if node._retains_grad:
                for nr, ref in node._retains_grad.items():
                    t = ref()
                    if t is not None and gs[nr] is not None:
                        _retain(t, gs[nr], create_graph)
            is_acc = type(node) is AccumulateGrad
            if is_acc and node.variable._hooks and gs[0] is not None:
                gs[0] = _run_tensor_hooks(node.variable._hooks, gs[0])
            if node in capture:
                for nr, k in capture[node]:
                    results[k] = _add(results[k], gs[nr])
                    if accumulate and not is_acc and not inputs[k]._retains:
                        _retain(inputs[k], gs[nr], create_graph)
            if execute is not None and node not in execute:
                continue
            if (node._pre_hooks or node._post_hooks) and STATE.tracer is not None:
                raise RuntimeError(
                    f"{node.name()}.register_hook/register_prehook inside a compiled function is "
                    "not supported: use Tensor.register_hook, which tracegrad.compile runs as a "
                    "host callback in the backward program")
            if node._pre_hooks:
                for h in list(node._pre_hooks.values()):
                    r = h(tuple(gs))
                    if r is not None:
                        gs = list(r)
            if prof is not None and node is not root:  # (the root is the engine's feeder)
                with prof.node_range(node):
                    outs = node.apply(gs)
            else:
                outs = node.apply(gs)
            if node._post_hooks:
                for h in list(node._post_hooks.values()):
                    r = h(tuple(outs), tuple(gs))
                    if r is not None:
                        outs = list(r)
            if not retain_graph:
                node.release()
            for (nxt, nr), g in zip(node.next_functions, outs):
                if nxt is None or nxt not in deps:
                    continue
                if g is not None:
                    buf = buffers.get(nxt)
                    if buf is None:
                        buf = buffers[nxt] = [None] * nxt.num_outputs
                    buf[nr] = _add(buf[nr], g)
                deps[nxt] -= 1
                if deps[nxt] == 0:
                    heapq.heappush(heap, (-nxt._seq, next(tie), nxt))
    finally:
        STATE.grad_enabled = prev_mode
    return results


def _retain(t, g, create_graph):
    if STATE.tracer is not None:  # deriving a compiled backward: retain at run time
        STATE.tracer.retain(t, g)
        return
    accumulate_grad(t, g, create_graph=create_graph, in_place=False)


def _tensor_backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Compute the gradient of this tensor w.r.t. graph leaves (see autograd.backward)."""
    backward(self, gradient, retain_graph, create_graph, inputs=inputs)


_tensor_backward.__name__ = _tensor_backward.__qualname__ = "backward"
Tensor.backward = _tensor_backward  # registered from above, as ops install Tensor's op methods
