"""Every script in examples/ runs as a user would run it (a subprocess, from a checkout) and
exits 0. New examples are picked up with no edit here. The main example, autograd_tour.py,
must also print exactly what the same script prints under PyTorch. The ``>>>`` snippets of
the user-guide pages on tensors, autograd, grad modes and hooks run as doctests."""
from __future__ import annotations

import doctest
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def _run(path, timeout=600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, str(path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_examples_exist():
    assert ROOT / "examples" / "autograd_tour.py" in EXAMPLES


# examples that need an optional package (the `examples` extra) skip without it
NEEDS = {"train_digits.py": "sklearn"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path):
    if path.name in NEEDS:
        pytest.importorskip(NEEDS[path.name])
    r = _run(path)
    assert r.returncode == 0, f"{path.name} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    assert r.stdout.strip(), f"{path.name} printed nothing"


def test_tour_prints_what_pytorch_prints(tmp_path, torch_ref):
    src = (ROOT / "examples" / "autograd_tour.py").read_text()
    as_torch = re.sub(r"^import tracegrad as torch.*$", "import torch", src, flags=re.M)
    as_torch = re.sub(r"^from tracegrad import nn.*$", "from torch import nn", as_torch, flags=re.M)
    assert as_torch != src
    script = tmp_path / "tour_torch.py"
    script.write_text(as_torch)
    theirs, ours = _run(script), _run(ROOT / "examples" / "autograd_tour.py")
    assert theirs.returncode == 0 and ours.returncode == 0, theirs.stderr + ours.stderr
    assert ours.stdout.replace("tracegrad.", "torch.") == theirs.stdout


DOC_PAGES = ["tensors.md", "autograd.md", "grad_modes.md", "hooks.md", "random.md"]


@pytest.mark.parametrize("page", DOC_PAGES)
def test_doc_snippets_print_what_they_show(page):
    from tracegrad import _device
    if page == "tensors.md" and _device._gpus():
        pytest.skip("tensors.md shows the error .cuda() raises without a GPU")
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    r = doctest.testfile(str(ROOT / "docs" / page), module_relative=False, optionflags=flags,
                         report=True, verbose=False)
    assert r.attempted > 0 and r.failed == 0, f"{r.failed} of {r.attempted} snippets in {page} differ"


# docs/compile.md: the printed programs are the point of these examples, so what the page
# shows must be what the code prints (the MLP example's comments cite "mlp.py", its name there)
COMPILE_EXAMPLES = [("### A small MLP with a cross-entropy loss", "mlp.py"),
                    ("## The joint program: forward and backward as one", "joint.py")]


@pytest.mark.parametrize("heading, name", COMPILE_EXAMPLES, ids=[n for _, n in COMPILE_EXAMPLES])
def test_compile_doc_examples_print_what_the_page_shows(heading, name, tmp_path):
    page = (ROOT / "docs" / "compile.md").read_text()
    section = page[page.index(heading):]
    code, shown = re.findall(r"```(?:python)?\n(.*?)```", section, flags=re.S)[:2]
    script = tmp_path / name
    script.write_text(code)
    r = _run(script)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.rstrip() == shown.rstrip()
