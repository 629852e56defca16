"""The public namespace: ``tracegrad.__all__`` is exactly what ``from tracegrad import *``
gives, nothing internal leaks into it or into ``dir(tracegrad)``, and every public module
(no ``_`` in its path) declares ``__all__`` naming things it has."""
import importlib
import pathlib
import types

import pytest

import tracegrad as tg

ROOT = pathlib.Path(tg.__file__).parent
SUBPACKAGES = {"autograd", "compiler", "func", "ir", "nn", "ops", "optim", "profiler"}
LEAKS = ["jax", "jnp", "np", "D", "REG", "REGISTRY", "unary", "binary", "compare", "predicate",
         "Op", "Sample", "Const", "apply", "apply_inplace", "register", "annotations",
         "elementwise", "reduction", "shape", "indexing", "linalg", "nn_ops", "C", "STATE"]


def _public_modules():
    for p in sorted(ROOT.rglob("*.py")):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(part.startswith("_") for part in parts):
            yield ".".join(parts)


def test_star_import_is_exactly_all():
    ns = {}
    exec("from tracegrad import *", ns)
    ns.pop("__builtins__")
    assert set(ns) == set(tg.__all__)
    assert len(tg.__all__) == len(set(tg.__all__)), "a name is listed twice"


@pytest.mark.parametrize("name", LEAKS)
def test_internal_names_do_not_leak(name):
    assert name not in tg.__all__
    assert name not in dir(tg)


def test_dir_holds_only_all_subpackages_and_private_names():
    extra = [n for n in dir(tg) if not n.startswith("_") and n not in tg.__all__]
    assert set(extra) <= SUBPACKAGES, sorted(set(extra) - SUBPACKAGES)
    modules = [n for n in tg.__all__ if isinstance(getattr(tg, n), types.ModuleType)]
    assert not modules


@pytest.mark.parametrize("module", list(_public_modules()))
def test_every_public_module_declares_all(module):
    m = importlib.import_module(module)
    assert hasattr(m, "__all__"), f"{module} has no __all__"
    missing = [n for n in m.__all__ if not hasattr(m, n)]
    assert not missing, f"{module}.__all__ names what it does not have: {missing}"


def test_names_torch_has_at_top_level_are_torch_names():
    torch = pytest.importorskip("torch")
    ours = {"compile", "is_tensor", "numel"}  # tracegrad's own, or torch's too
    not_torch = [n for n in tg.__all__ if not hasattr(torch, n) and n not in ours]
    assert not not_torch, not_torch
