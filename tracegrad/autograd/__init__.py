"""``tracegrad.autograd``: backward/grad, grad modes, graph nodes (and Function, gradcheck,
functional, profiler)."""
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .engine import backward, grad
from .graph import Node
from .function import Function, once_differentiable
from .gradcheck import gradcheck, gradgradcheck
from . import functional
from . import profiler

__all__ = ["backward", "grad", "Node", "Function", "once_differentiable", "gradcheck",
           "gradgradcheck", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "inference_mode", "functional", "profiler", "graph",
           "grad_mode"]
