"""The fixed-seed CI slice of the fuzzer: 200 programs (every fifth also compiled, traced
and from the cache) over every feature except those in ``KNOWN_OPEN``, which must agree
with PyTorch exactly. A failure prints each disagreement class with a minimal repro.

The long run is ``python scripts/fuzz.py --programs 2000 --compiled --second-order``
(docs/fuzzing.md)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import tracegrad  # noqa: E402

from .campaign import fuzz  # noqa: E402
from .features import KNOWN_OPEN, select  # noqa: E402

SLICE = dict(programs=200, seed=20261204, compiled_every=5)


def test_the_slice_agrees_with_pytorch():
    report = fuzz(SLICE["programs"], SLICE["seed"], select(off=KNOWN_OPEN), compiled=True,
                  compiled_every=SLICE["compiled_every"], shrink_budget=40, max_shrinks=3,
                  torch=torch, tg=tracegrad)
    assert not report.generator_errors, report.summary()
    detail = [report.summary()]
    for f in report.findings.values():
        detail += [f"\n=== {f.key}", *map(str, f.mismatches[:4]), f.minimal.render()]
    assert not report.findings, "\n".join(detail)
