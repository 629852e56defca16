"""docs/nn.md and the docstrings of tracegrad.nn and tracegrad.optim run as doctests."""
import doctest
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_nn_page():
    r = doctest.testfile(str(ROOT / "docs" / "nn.md"), module_relative=False,
                         optionflags=FLAGS, verbose=False)
    assert r.attempted > 20 and r.failed == 0


@pytest.mark.parametrize("name", ["tracegrad.nn.module", "tracegrad.nn.parameter",
                                  "tracegrad.nn.layers", "tracegrad.nn.loss",
                                  "tracegrad.nn.functional", "tracegrad.optim.sgd",
                                  "tracegrad.nn.conv", "tracegrad.nn.pooling",
                                  "tracegrad.nn.normalization", "tracegrad.nn.sparse",
                                  "tracegrad.ops.conv"])
def test_docstrings(name):
    r = doctest.testmod(importlib.import_module(name), optionflags=FLAGS, verbose=False)
    assert r.failed == 0
