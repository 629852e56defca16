"""``tracegrad.nn``: a small ``torch.nn`` -- ``Module``, ``Parameter``, ``Linear``,
activations, containers and losses, with ``functional`` and ``init``. Everything is built from
tracegrad ops, so models run eagerly, differentiate to any order, and compile."""
from __future__ import annotations

from . import functional, init
from .layers import (Flatten, Identity, Linear, LogSoftmax, ModuleList, ReLU, Sequential,
                     Sigmoid, Softmax, Tanh)
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module
from .parameter import Parameter
from . import utils

__all__ = ["Module", "Parameter", "Linear", "Identity", "ReLU", "Tanh", "Sigmoid", "Softmax",
           "LogSoftmax", "Flatten", "Sequential", "ModuleList", "MSELoss", "CrossEntropyLoss",
           "NLLLoss", "functional", "init", "utils"]
