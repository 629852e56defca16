"""Shared test setup: tracegrad importable from a checkout, grad mode reset around each test,
and the optional PyTorch oracle."""
from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, ROOT)

import tracegrad  # noqa: E402
from tracegrad._state import STATE  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_grad_mode():
    """A test that calls ``set_grad_enabled(False)`` as a plain call (the spec does) must not
    leak the mode into the next test."""
    STATE.grad_enabled, STATE.inference = True, False
    tracegrad.manual_seed(0)
    yield
    STATE.grad_enabled, STATE.inference = True, False


@pytest.fixture
def torch_ref():
    """PyTorch, as the oracle for comparison tests (skipped where it is not installed)."""
    return pytest.importorskip("torch")
