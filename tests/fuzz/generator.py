"""Random programs over the op registry and Tensor's common methods.

``generate(seed, features)`` draws a ``Program``: a few inputs (0-d and size-1 dims, values on
a tie-making grid or random), a body of steps drawn from ``entries.ENTRIES`` (one entry per
family of ops; ``COVERS`` says which registry ops each reaches, and a test holds that every
registered op is reached), and a tail of backward passes (``backward``, ``autograd.grad``
with several outputs and ``grad_outputs``, ``retain_graph``, ``create_graph`` and a second
derivative).

Generation runs every drawn step in torch as it goes, so the generator knows each value's
shape, dtype, values, aliasing (``_base``) and ``requires_grad`` exactly as PyTorch has them,
without a shape calculus of its own. A step that torch rejects is dropped, unless the
"invalid" feature keeps it as the program's last step (both libraries must then raise the
same exception). The same seed always gives the same program.
"""
from __future__ import annotations

import math
import re
import warnings

import numpy as np

from .entries import ENTRIES, KINKED, Rejected
from .features import select
from .program import PRELUDE, Input, Program, Step, Tail

__all__ = ["generate", "Gen"]

_NAME = re.compile(r"\b[xvg]+\d+(?:_leaf)?\b")
GRID = [-1.0, -0.5, 0.0, 0.5, 1.0, 2.0]


class Gen:
    def __init__(self, seed, features, torch):
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.f = features
        self.torch = torch
        self.ns = {"T": torch}
        exec(PRELUDE, self.ns)
        self.program = Program([], [], None, seed=tuple(np.atleast_1d(seed).tolist()))
        self.vars = []       # tensor names in scope, in order
        self.n_inputs = 0
        self.n_values = 0
        self.ended = False   # a step raised (on purpose): nothing may follow it

    # ------------------------------------------------------------------ drawing helpers
    def on(self, name):
        return name in self.f

    def coin(self, p):
        return bool(self.rng.random() < p)

    def choice(self, seq):
        seq = list(seq)
        if not seq:
            raise Rejected()   # nothing to draw from (an empty tensor's values, ...)
        return seq[int(self.rng.integers(len(seq)))]

    def t(self, name):
        return self.ns[name]

    def is_float(self, name):
        return self.t(name).is_floating_point()

    def pick(self, pred=lambda t: True, dtype="float"):
        """A name in scope whose torch tensor satisfies ``pred`` (and dtype kind)."""
        ok = []
        for n in self.vars:
            t = self.t(n)
            kind = ("float" if t.is_floating_point() else
                    "bool" if t.dtype == self.torch.bool else "int")
            try:  # (empty tensors are results to compare, never operands: nothing to draw)
                fits = (dtype == "any" or kind == dtype) and t.numel() > 0 and bool(pred(t))
            except (RuntimeError, TypeError, NotImplementedError):  # pred not defined for t's dtype
                fits = False
            if fits:
                ok.append(n)
        return self.choice(ok) if ok else None

    def shape(self, ndim=None):
        if ndim is None:
            ndim = self.choice([0, 1, 1, 2, 2, 2, 3] if self.on("zero_dim") else [1, 1, 2, 2, 2, 3])
        sizes = [1, 2, 3, 4] if self.on("size_one") else [2, 3, 4]
        shape = tuple(self.choice(sizes) for _ in range(ndim))
        while math.prod(shape) > 24:
            shape = shape[1:]
        return shape

    def data(self, shape, dtype, positive=False):
        n = math.prod(shape)
        if dtype == "bool":
            v = self.rng.random(n) < 0.5
        elif dtype == "int64":
            v = self.rng.integers(-3, 4, n)
        elif positive:
            v = (np.array([self.choice([0.5, 1.0, 1.5, 2.0]) for _ in range(n)])
                 if self.on("ties") and self.coin(0.5) else np.round(self.rng.uniform(0.3, 2.0, n), 3))
        elif self.on("ties") and self.coin(0.5):
            v = np.array([self.choice(GRID) for _ in range(n)])
        else:
            v = np.round(self.rng.standard_normal(n), 3)
        return np.asarray(v).reshape(shape)

    def float_dtype(self):
        return "float32" if self.on("float32") and self.coin(0.3) else "float64"

    def new_input(self, shape=None, dtype=None, positive=False, grad=None):
        shape = self.shape() if shape is None else tuple(shape)
        dtype = dtype or self.float_dtype()
        name = f"x{self.n_inputs}"
        self.n_inputs += 1
        kind, hook = "const", None
        if dtype.startswith("float"):
            kind = "leaf" if (grad if grad is not None else self.coin(0.75)) else "const"
            if kind == "leaf" and self.on("nonleaf_inputs") and self.coin(0.15):
                kind = "nonleaf"
                if self.on("hooks") and self.coin(0.6):
                    hook = self.choice(["retain_grad", "hook"])
        inp = Input(name, self.data(shape, dtype, positive), dtype, kind, hook)
        exec(inp.source(), self.ns)
        self.program.inputs.append(inp)
        self.vars.append(name)
        return name

    def value(self):
        name = f"v{self.n_values}"
        self.n_values += 1
        return name

    def operand(self, pred=lambda t: True, positive=False, dtype=None):
        """A float operand: an existing one that fits, else a new input."""
        ok = (lambda t: pred(t) and bool((t > 0.05).all())) if positive else pred
        name = self.pick(ok) if self.coin(0.8) else None
        return name or self.new_input(positive=positive, dtype=dtype)

    def dim(self, t, allow_none=True):
        """A dim argument for ``t``: None, an int (maybe negative) or a tuple."""
        if t.ndim == 0:
            if allow_none and not (self.on("dim_on_0d") and self.coin(0.5)):
                return None
            return self.choice([0, -1]) if self.on("dim_on_0d") else None
        r = self.rng.random()
        if allow_none and r < 0.25:
            return None
        d = int(self.rng.integers(-t.ndim, t.ndim))
        if r > 0.85 and t.ndim >= 2:
            e = int(self.rng.integers(0, t.ndim))
            if e % t.ndim != d % t.ndim:
                return (d, e)
        return d

    def int_dim(self, t):
        """An int dim for ops that need one (None for a 0-d tensor unless dim_on_0d)."""
        d = self.dim(t, allow_none=False)
        return d if isinstance(d, int) else (None if d is None else d[0])

    def broadcast_partner(self, t):
        """A shape that broadcasts with ``t.shape``."""
        s = list(t.shape)
        if not self.on("broadcast"):
            return tuple(s)
        r = self.rng.random()
        if r < 0.3 and s:
            s = s[int(self.rng.integers(0, len(s) + 1)):]   # fewer leading dims
        elif r < 0.6:
            s = [1 if self.coin(0.5) else x for x in s]    # size-1 dims
        elif r < 0.7 and len(s) < 3:
            s = [self.choice([1, 2])] + s                   # an extra leading dim
        return tuple(s)

    def compatible(self, a, b):
        try:
            np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
            return True
        except ValueError:
            return False

    def scalar(self):
        return self.choice([2.5, -1.0, 0.5, 2, 0, 3, 1.5, -2])

    # ------------------------------------------------------------------ emitting steps
    def emit(self, label, code, reads=(), defines=(), mutates=(), invalid=False, reject=None):
        """Run ``code`` in torch; keep it as a body step if it runs (or if it raises and is
        meant to, or may be kept as an invalid call), unless ``reject(first output)``."""
        if self.on("no_grad") and not self.program.call_under_no_grad and self.coin(0.08):
            code = self.choice(["with T.no_grad():", "with T.set_grad_enabled(False):"]) \
                + "\n    " + code.replace("\n", "\n    ")
        elif self.program.call_under_no_grad and self.on("enable_grad_inside") and self.coin(0.6):
            code = "with T.enable_grad():\n    " + code.replace("\n", "\n    ")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.program.call_under_no_grad:
                    with self.torch.no_grad():
                        exec(code, self.ns)
                else:
                    exec(code, self.ns)
        except Exception:  # noqa: BLE001 - torch refused the step
            if not (invalid or (self.on("invalid") and self.coin(0.15))):
                self._forget(defines)
                raise Rejected() from None
            self.ended = True
        if not self.ended and reject is not None and reject(self.ns[defines[0]]):
            self._forget(defines)
            raise Rejected()
        no_grad = (code.startswith(("with T.no_grad", "with T.set_grad_enabled(False)"))
                   or (self.program.call_under_no_grad and not code.startswith("with T.enable_grad")))
        if not self.ended and not self.on("alias_no_grad") and no_grad and self._aliases(defines):
            self._forget(defines)
            raise Rejected()
        if not self.ended and mutates and not self.on("inplace_saved") and self._stale_saved():
            self._replay()   # undo the change: the namespace must be what the program makes
            raise Rejected()
        reads = tuple(n for n in _NAME.findall(code) if n not in defines and n in self.ns)
        self.program.body.append(Step(label, code, tuple(dict.fromkeys(reads)), tuple(defines),
                                      tuple(mutates)))
        if not self.ended:
            for n in defines:
                if not isinstance(self.ns.get(n), self.torch.Tensor):
                    raise AssertionError(f"step {code!r} defined a non-tensor {n}")
                self.vars.append(n)
        return True

    def _forget(self, names):
        for n in names:
            self.ns.pop(n, None)

    def _stale_saved(self):
        """Whether a backward now would find a saved tensor changed in place."""
        T = self.torch
        roots = [self.t(n) for n in self.vars if self.t(n).grad_fn is not None]
        if not roots:
            return False
        try:
            with T.enable_grad():
                T.autograd.backward([r.sum() for r in roots if r.is_floating_point()],
                                    inputs=[self.t(n) for n in self.vars if self.t(n).requires_grad],
                                    retain_graph=True) if any(r.is_floating_point() for r in roots) else None
        except RuntimeError as e:
            return "modified by an inplace operation" in str(e)
        finally:
            for t in self.ns.values():
                if isinstance(t, T.Tensor) and (t.is_leaf or t.retains_grad or t.requires_grad):
                    t.grad = None
        return False

    def _replay(self):
        """Rebuild the torch namespace from the program drawn so far."""
        self.ns = {"T": self.torch}
        exec(PRELUDE, self.ns)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for inp in self.program.inputs:
                exec(inp.source(), self.ns)
            for step in self.program.body:
                if self.program.call_under_no_grad:
                    with self.torch.no_grad():
                        exec(step.code, self.ns)
                else:
                    exec(step.code, self.ns)

    def _aliases(self, names):
        """Whether one of ``names`` shares storage with (is a view or alias of) a name in scope."""
        ptrs = {self.t(n).untyped_storage().data_ptr() for n in self.vars if self.t(n).numel()}
        made = [self.ns[n] for n in names if isinstance(self.ns.get(n), self.torch.Tensor)]
        return any(u._base is not None or (u.numel() and u.untyped_storage().data_ptr() in ptrs)
                   for u in made)

    # ------------------------------------------------------------------ the program
    def body(self):
        if (self.on("enable_grad_inside") or self.on("call_no_grad")) and self.coin(0.12):
            self.program.call_under_no_grad = True
        for _ in range(2):
            self.new_input()
        steps = int(self.rng.integers(1, 8))
        names = [n for n, (_, needs, _) in ENTRIES.items() if needs <= self.f]
        weights = np.array([ENTRIES[n][2] for n in names])
        weights = weights / weights.sum()
        done = tries = 0
        while done < steps and not self.ended and tries < 60:
            tries += 1
            name = names[int(self.rng.choice(len(names), p=weights))]
            try:
                if ENTRIES[name][0](self):
                    done += 1
            except Rejected:
                continue
            except ValueError as e:   # a draw from an empty range (a size-0 dim): draw again
                if "high <= 0" not in str(e) and "low >= high" not in str(e):
                    raise

    def tail(self):
        if self.ended:
            return
        outs = [n for n in self.program.outputs()
                if self.t(n).is_floating_point() and self.t(n).requires_grad]
        xs = [n for i in self.program.inputs for n in i.names() if i.kind in ("leaf", "nonleaf")]
        if not outs or not xs:
            return
        if self.on("multi_output") and len(outs) > 1 and self.coin(0.5):
            chosen = sorted(set(self.choice(outs) for _ in range(3)), key=outs.index)
        else:
            chosen = [outs[-1] if self.coin(0.7) else self.choice(outs)]
        tail = Tail("grad" if self.coin(0.5) else "backward", chosen, xs)
        tail.retain = self.on("retain_graph") and self.coin(0.25)
        tail.repeat = (2 if self.on("backward_after_free") and self.coin(0.5) else 1) if tail.retain else 0
        kinked = any(s.label.split(" ")[0] in KINKED for s in self.program.body)
        tail.create = (self.on("second_order") and self.coin(0.35)
                       and (not kinked or self.on("second_order_kinks")))
        if tail.kind == "backward":
            tail.implicit = self.t(chosen[-1]).ndim == 0 and self.coin(0.5)
        if not self.on("partial_backward"):
            tail.outs = chosen = outs  # every differentiable output: every input it needs is reached
            if not self._reaches_all(outs, xs):
                return
        self.program.tail = tail
        first = tail.steps()[0]
        self._run_tail(first.code)
        if tail.kind == "grad" and tail.create:
            tail.second = any(isinstance(self.ns.get(g), self.torch.Tensor) and self.ns[g].requires_grad
                              for g in first.defines)
            if tail.second and not self.on("backward_after_free"):
                tail.repeat = 0   # the second-order pass frees the graph

    def _reaches_all(self, outs, xs):
        T = self.torch
        try:
            gs = T.autograd.grad([self.t(o) for o in outs], [self.t(x) for x in xs],
                                 [T.ones_like(self.t(o)) for o in outs], retain_graph=True,
                                 allow_unused=True)
        except RuntimeError:
            return True   # the tail will raise; both libraries must raise alike
        return all(g is not None for g in gs)

    def _run_tail(self, code):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(code, self.ns)
        except Exception:  # noqa: BLE001 - kept: the run compares that both raise
            pass


def generate(seed, features=None, torch=None):
    """The program for ``seed`` (an int or a sequence of ints) with ``features`` on
    (default: all of them)."""
    if torch is None:
        import torch  # (torch is the generator's oracle; imported only when a program is drawn)
    g = Gen(seed, select() if features is None else features, torch)
    g.body()
    g.tail()
    return g.program
