"""``tracegrad.utils``: ``data`` (datasets, samplers, DataLoader) and ``safetensors``."""
from __future__ import annotations

from . import data, safetensors

__all__ = ["data", "safetensors"]
