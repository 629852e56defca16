"""The engine is linear in the size of the graph, for backward() and for grad(inputs=...).

Checked structurally, not by the clock: the nodes of a chain count how often the engine reads
their edges (``next_functions``). A linear engine reads each node's edges a bounded number of
times, so a 4x longer chain costs at most about 4x the reads; the old reachability pass under
``inputs=`` (propagate until nothing changes) read them about n^2 / 2 times.
"""
import pytest

import tracegrad as tg
from tracegrad.autograd.graph import Node


class _Step(Node):
    """Identity backward node that counts reads of its edges."""

    reads = 0

    @property
    def next_functions(self):
        _Step.reads += 1
        return self._edges

    @next_functions.setter
    def next_functions(self, edges):
        self._edges = edges

    def apply(self, grad_outputs):
        return [grad_outputs[0]]


def _chain(n):
    """(leaf x, output y): y's history is n identity nodes, then x's AccumulateGrad."""
    x = tg.tensor(2.0, requires_grad=True)
    edge = (x._accumulator(), 0)
    node = None
    for _ in range(n):
        node = _Step((edge,))
        edge = (node, 0)
    y = x.detach()
    y.grad_fn, y._rg = node, True
    return x, y


def _reads(n, run):
    x, y = _chain(n)
    _Step.reads = 0
    run(x, y)
    return _Step.reads


_RUNS = {
    "grad(inputs)": lambda x, y: tg.autograd.grad(y, x),
    "backward()": lambda x, y: y.backward(),
    "backward(inputs)": lambda x, y: y.backward(inputs=[x]),
}


@pytest.mark.parametrize("how", sorted(_RUNS))
def test_edge_reads_grow_linearly_with_the_chain(how):
    run = _RUNS[how]
    small, large = _reads(1000, run), _reads(4000, run)
    assert small >= 1000  # every node was visited
    assert large <= 4 * small + 100, (small, large)  # quadratic would be ~16x


def test_grad_through_a_4000_node_chain_is_right():
    x, y = _chain(4000)
    (g,) = tg.autograd.grad(y, x)
    assert g.item() == 1.0
    x, y = _chain(4000)
    y.backward(inputs=[x])
    assert x.grad.item() == 1.0


def test_grad_of_a_real_4000_op_chain_matches_backward():
    x = tg.ones(3, requires_grad=True)
    y = x
    for _ in range(4000):
        y = y * 1.0001
    loss = y.sum()
    (g,) = tg.autograd.grad(loss, x, retain_graph=True)
    loss.backward()
    assert g.tolist() == x.grad.tolist()
    assert abs(g[0].item() - 1.0001 ** 4000) < 1e-3
