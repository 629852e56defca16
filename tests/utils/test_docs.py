"""docs/training.md and the docstrings of the training kit run as doctests."""
import doctest
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_training_page():
    r = doctest.testfile(str(ROOT / "docs" / "training.md"), module_relative=False,
                         optionflags=FLAGS, verbose=False)
    assert r.attempted > 20 and r.failed == 0


@pytest.mark.parametrize("name", ["tracegrad.serialization", "tracegrad.utils.safetensors",
                                  "tracegrad.utils.data.dataset", "tracegrad.utils.data._collate",
                                  "tracegrad.utils.data.dataloader", "tracegrad.nn.utils.clip_grad"])
def test_docstrings(name):
    r = doctest.testmod(importlib.import_module(name), optionflags=FLAGS, verbose=False)
    assert r.attempted > 0 and r.failed == 0
