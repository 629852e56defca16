"""``tracegrad.optim``: ``SGD`` and ``Adam`` with PyTorch's update rules and options."""
from __future__ import annotations

from .adam import Adam
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam"]
