"""``tracegrad.autograd.graph``, PyTorch's path for the autograd graph: ``Node`` (what
``tensor.grad_fn`` is), ``AccumulateGrad``, saved tensors and removable hook handles.

They are defined in ``tracegrad/_graph.py``, a layer below ``Tensor`` (which needs them);
this module is the public name, so it sits with the rest of ``tracegrad.autograd``.
"""
from .._graph import AccumulateGrad, Node, RemovableHandle, SavedTensor

__all__ = ["Node", "AccumulateGrad", "SavedTensor", "RemovableHandle"]
