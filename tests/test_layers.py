"""The package's layers, as data, and a check that every import goes downward.

Each module belongs to one layer (the longest matching name below); a module may import only
from its own layer or lower ones. Imports are read from the source (``ast``), including
imports inside functions, and ``import a.b.c`` counts as importing the packages ``a.b`` too,
since Python runs a package's ``__init__`` before any module in it (so a low module inside a
high package would drag the whole package in). The root ``tracegrad`` package is the top
layer, the namespace: Python loads it first, and it imports the layers in order.

The module-level imports must form no cycle (imports inside functions run later, so they
cannot make one); imports inside functions are few and each says why on its line.
"""
import ast
import pathlib

import pytest

LAYERS = [  # bottom to top: (layer, module names or package prefixes)
    ("state and errors", ["tracegrad._dtype", "tracegrad._device", "tracegrad._state",
                          "tracegrad._errors", "tracegrad._tensor_str"]),
    ("autograd graph and grad mode", ["tracegrad._graph", "tracegrad._grad_mode"]),
    ("tensor", ["tracegrad._tensor"]),
    ("ops and creation", ["tracegrad._creation", "tracegrad.ops"]),
    ("engine, Function, gradcheck, profiler", ["tracegrad.autograd", "tracegrad.profiler"]),
    ("ir", ["tracegrad.ir"]),
    ("compiler", ["tracegrad.compiler"]),
    ("libraries", ["tracegrad.nn", "tracegrad.optim", "tracegrad.func", "tracegrad.utils",
                   "tracegrad.serialization"]),
    ("namespace", ["tracegrad"]),
]
MAX_FUNCTION_IMPORTS = 10  # imports inside functions, in the whole package: fewer than this

ROOT = pathlib.Path(__file__).resolve().parents[1] / "tracegrad"


def _modules():
    """{module name: (path, is_package)} for every .py file of the package."""
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            out[".".join(parts[:-1])] = (p, True)
        else:
            out[".".join(parts)] = (p, False)
    return out


MODULES = _modules()


def _rel(path):
    return path.relative_to(ROOT.parent) if path.is_relative_to(ROOT.parent) else path


def layer_of(name):
    best, level = None, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for pre in prefixes:
            if (name == pre or (pre != "tracegrad" and name.startswith(pre + "."))) \
                    and (best is None or len(pre) > len(best)):
                best, level = pre, i
    return level


def _imports(name):
    """[(imported module, line, inside a function, source line)] of module ``name``."""
    path, is_pkg = MODULES[name]
    src = path.read_text()
    tree = ast.parse(src)
    lines = src.splitlines()
    package = name if is_pkg else name.rpartition(".")[0]
    in_function = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function.update(id(m) for m in ast.walk(n) if m is not n)
    out = []
    for n in ast.walk(tree):
        targets = []
        if isinstance(n, ast.Import):
            targets = [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = package.split(".")[:len(package.split(".")) - (n.level - 1)]
                mod = ".".join(base + ([n.module] if n.module else []))
            else:
                mod = n.module
            # `from pkg import sub` imports the module pkg.sub (and pkg)
            targets = [mod] + [f"{mod}.{a.name}" for a in n.names if f"{mod}.{a.name}" in MODULES]
        for t in targets:
            if t == "tracegrad" or t.startswith("tracegrad."):
                out.append((t, n.lineno, id(n) in in_function, lines[n.lineno - 1].strip()))
    return out


def _with_parents(target):
    """``target`` and the packages above it that Python imports first (not the root)."""
    parts = target.split(".")
    return [".".join(parts[:k]) for k in range(2, len(parts) + 1)]


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if layer_of(m) is None]
    assert not missing, f"modules in no layer of tests/test_layers.py LAYERS: {missing}"


def test_every_import_goes_down():
    bad = []
    for name in MODULES:
        mine = layer_of(name)
        seen = set()
        for target, line, inside, text in _imports(name):
            for t in _with_parents(target):
                if t not in MODULES or (line, t) in seen:
                    continue
                seen.add((line, t))
                theirs = layer_of(t)
                if theirs > mine:
                    bad.append(f"{_rel(MODULES[name][0])}:{line}: {name} "
                               f"({LAYERS[mine][0]}) imports {t} ({LAYERS[theirs][0]})"
                               f"{' inside a function' if inside else ''}: {text}")
    assert not bad, "imports that go up a layer:\n" + "\n".join(bad)


def test_module_level_imports_have_no_cycle():
    graph = {}
    for name in MODULES:
        deps = set()
        for target, _, inside, _ in _imports(name):
            if inside:
                continue
            for t in _with_parents(target):
                # a module's own enclosing packages are already being imported: not an edge
                if t in MODULES and t != name and not name.startswith(t + "."):
                    deps.add(t)
        graph[name] = deps
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == "open":
                cycle = stack[stack.index(d):] + [d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_imports_inside_functions_are_few_and_say_why():
    inside = [(name, line, text) for name in MODULES
              for _, line, in_fn, text in _imports(name) if in_fn]
    report = "\n".join(f"  {_rel(MODULES[n][0])}:{line}: {text}"
                       for n, line, text in inside)
    print(f"{len(inside)} imports of tracegrad modules inside functions:\n{report}")
    assert len(inside) < MAX_FUNCTION_IMPORTS, report
    silent = [f"{n}:{line}" for n, line, text in inside if "#" not in text]
    assert not silent, f"imports inside functions without a reason comment: {silent}"


def test_the_layer_check_sees_an_upward_import(tmp_path, monkeypatch):
    # the checker itself: a fake low module importing the compiler is reported
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from .compiler import tracer  # no reason\n")
    monkeypatch.setitem(MODULES, "tracegrad._state_fake", (fake, False))
    LAYERS[0][1].append("tracegrad._state_fake")
    try:
        with pytest.raises(AssertionError, match=r"_state_fake \(state and errors\) imports "
                                                 r"tracegrad.compiler \(compiler\) inside a "
                                                 r"function"):
            test_every_import_goes_down()
    finally:
        LAYERS[0][1].remove("tracegrad._state_fake")
