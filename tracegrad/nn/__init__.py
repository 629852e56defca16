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
from .activation import (ELU, GELU, Dropout, Hardtanh, LeakyReLU, ReLU6, SiLU, Softplus,  # noqa: E402
                         Unflatten)
from .container import ModuleDict, ParameterDict, ParameterList  # noqa: E402
from .conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d  # noqa: E402
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm  # noqa: E402
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d,  # noqa: E402
                      MaxPool1d, MaxPool2d)
from .sparse import Embedding  # noqa: E402
from .loss import *  # noqa: E402,F401,F403  (the losses added to nn/loss.py)
from . import utils  # noqa: E402

__all__ = ["Module", "Parameter", "Linear", "Identity", "ReLU", "Tanh", "Sigmoid", "Softmax",
           "LogSoftmax", "Flatten", "Sequential", "ModuleList", "MSELoss", "CrossEntropyLoss",
           "NLLLoss", "functional", "init", "utils"]
__all__ += ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "MaxPool1d", "MaxPool2d",
            "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "BatchNorm1d",
            "BatchNorm2d", "LayerNorm", "GroupNorm", "Dropout", "Embedding", "GELU", "SiLU",
            "LeakyReLU", "ELU", "Softplus", "Hardtanh", "ReLU6", "Unflatten", "ModuleDict",
            "ParameterList", "ParameterDict"]
