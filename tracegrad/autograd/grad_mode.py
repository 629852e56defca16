"""``tracegrad.autograd.grad_mode``, PyTorch's path for the grad-mode switches.

They are defined in ``tracegrad/_grad_mode.py``, a layer below ``Tensor``; this module is the
public name, so it sits with the rest of ``tracegrad.autograd``.
"""
from .._grad_mode import (enable_grad, inference_mode, is_grad_enabled,
                          is_inference_mode_enabled, no_grad, set_grad_enabled)

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "is_inference_mode_enabled"]
