"""``tracegrad.utils``: ``data`` (datasets, samplers, DataLoader) and ``safetensors``."""
from __future__ import annotations

from . import safetensors

__all__ = ["safetensors"]
