"""The generator's catalogue: one entry per family of ops, each drawing one step.

An entry is ``fn(g)`` over the generator ``g`` (``generator.Gen``): it picks operands in
scope (``g.pick``, ``g.operand``), draws the arguments and calls ``g.emit(label, code, ...)``,
or returns False when nothing fits. ``COVERS`` says which registry ops each entry reaches (a
test holds that together they reach every registered op); ``needs`` are the features an
entry is drawn under.
"""
from __future__ import annotations

from tracegrad.ops import REG

__all__ = ["ENTRIES", "COVERS", "KINKED", "Rejected"]

UNARY = ["neg", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tanh",
         "sigmoid", "relu", "abs", "sign", "reciprocal", "square"]
POSITIVE = {"log", "sqrt", "rsqrt", "reciprocal"}  # (log1p wants > -1)
ARITH = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
LOGICAL = ["logical_and", "logical_or", "logical_xor"]
BITWISE = {"bitwise_and": "&", "bitwise_or": "|", "bitwise_xor": "^"}
INPLACE_UNARY = ["exp_", "neg_", "sigmoid_", "tanh_", "relu_", "abs_", "sqrt_"]
INPLACE_BINARY = {"add_": "+=", "sub_": "-=", "mul_": "*=", "div_": "/="}
# labels of steps through ops the registry marks not twice differentiable (kinks): second
# order through them is the "second_order_kinks" feature
KINKED = ({n for n, op in REG.items() if not op.twice_differentiable}
          | {"max", "min", "max(dim)", "min(dim)", "F.relu", "relu_", "abs_", "clamp_", "norm"})

# Registry ops no entry draws yet: the layers' ops (conv, pool, norms, activations, losses), the
# new math/array ops and a few internal ops of the view model, all added in one session. The
# registry-generated tests (forward, VJP vs finite differences / jax.vjp / PyTorch, gradcheck,
# compiled) and tests/nn/test_layers_torch.py cover them; this list only shrinks -- a test fails
# when an entry reaches an op that is still listed here.
NOT_FUZZED_YET = frozenset("""
    adaptive_avg_pool2d adaptive_avg_pool2d_backward addmm all any as_strided as_strided_backward
    atan2 avg_pool2d avg_pool2d_backward batch_norm binary_cross_entropy
    binary_cross_entropy_with_logits ceil conv_input_grad conv_weight_grad convolution copy_slices
    cumsum diagonal elu embedding embedding_backward erf erfc flip floor fmax fmin frac gelu
    group_norm hardtanh huber_loss hypot layer_norm leaky_relu lerp linalg_vector_norm masked_fill
    max_pool2d max_pool_gather max_pool_gather_backward max_pool_indices mse_loss nll_loss one_hot
    pad pad_backward roll round round_decimals silu smooth_l1_loss softplus squeeze_inplace t tril
    triu trunc unsafe_view""".split())

# entry name -> (features it needs, registry ops it reaches)
COVERS: dict[str, tuple] = {}
ENTRIES: dict[str, object] = {}


def entry(name, needs=(), covers=(), weight=1.0):
    def register(fn):
        ENTRIES[name] = (fn, frozenset(needs), weight)
        COVERS[name] = tuple(covers)
        return fn
    return register


class Rejected(Exception):
    """torch refused a step the generator did not mean to be invalid: draw another."""



# ====================================================================== the entries
# Each entry draws one step (or returns False when nothing in scope fits).

@entry("unary", covers=UNARY + ["threshold_backward"], weight=3)  # (relu's gradient)
def _unary(g):
    name = g.choice(UNARY)
    positive = name in POSITIVE or name == "pow"
    dt = "any" if g.on("integer") and name in ("abs", "neg", "sign", "square") and g.coin(0.2) else "float"
    a = g.pick((lambda t: bool((t > -0.9).all())) if name == "log1p" else
               (lambda t: bool((t > 0.05).all())) if positive else (lambda t: True), dtype=dt)
    if a is None or g.coin(0.2):
        a = g.new_input(positive=positive or name == "log1p")
    o = g.value()
    form = g.choice([f"T.{name}({a})", f"{a}.{name}()"] +
                    ([f"-{a}"] if name == "neg" else []) + ([f"abs({a})"] if name == "abs" else []))
    return g.emit(name, f"{o} = {form}", (a,), (o,))


def _binary_operands(g, name):
    dtype_kind = "float"
    if g.on("integer") and name in ("add", "sub", "mul") and g.coin(0.15):
        dtype_kind = "int"
    a = g.pick(dtype=dtype_kind) if dtype_kind == "int" else g.operand(positive=(name == "pow"))
    if a is None:
        a = g.new_input(dtype="int64")
    ta = g.t(a)
    if g.on("scalars") and g.coin(0.3):
        return a, None
    same_dtype = lambda t: g.on("mixed_dtype") or t.dtype == ta.dtype  # noqa: E731
    nonzero = (lambda t: bool((t.abs() > 0.1).all())) if name == "div" else (lambda t: True)
    b = g.pick(lambda t: g.compatible(ta, t) and same_dtype(t) and nonzero(t),
               dtype="any" if g.on("mixed_dtype") else dtype_kind) if g.coin(0.6) else None
    if b is None:
        dtype = str(ta.dtype).rsplit(".", 1)[-1]
        b = g.new_input(g.broadcast_partner(ta), dtype=dtype, positive=(name == "div"))
    return a, b


@entry("arith", covers=list(ARITH) + ["add_scaled", "sub_scaled"], weight=4)
def _arith(g):
    name = g.choice(ARITH)
    a, b = _binary_operands(g, name)
    o = g.value()
    if b is None:
        s = g.scalar() if name != "pow" else g.choice([2, 3, 0.5, 0, -1, 1.5])
        if name == "div" and s == 0:
            s = 2
        form = g.choice([f"{a} {ARITH[name]} {s!r}", f"T.{name}({a}, {s!r})", f"{a}.{name}({s!r})"]
                        + ([f"{s!r} {ARITH[name]} {a}"] if name != "pow" or s > 0 else []))
        return g.emit(name, f"{o} = {form}", (a,), (o,))
    forms = [f"{a} {ARITH[name]} {b}", f"T.{name}({a}, {b})", f"{a}.{name}({b})"]
    if name in ("add", "sub") and g.on("alpha"):
        alpha = g.choice([0.5, 2, -1.5])
        forms += [f"T.{name}({a}, {b}, alpha={alpha!r})", f"{a}.{name}({b}, alpha={alpha!r})"]
    form = g.choice(forms)
    return g.emit(name + ("(alpha)" if "alpha" in form else ""), f"{o} = {form}", (a, b), (o,))


@entry("minmax", covers=["maximum", "minimum"], weight=1.5)
def _minmax(g):
    name = g.choice(["maximum", "minimum"])
    a, b = _binary_operands(g, name)
    if b is None:   # ties: the partner equals a somewhere
        b = g.new_input(tuple(g.t(a).shape), dtype=str(g.t(a).dtype).rsplit(".", 1)[-1])
    o = g.value()
    form = g.choice([f"T.{name}({a}, {b})", f"{a}.{name}({b})",
                     f"T.{'max' if name == 'maximum' else 'min'}({a}, {b})"])
    return g.emit(name, f"{o} = {form}", (a, b), (o,))


@entry("compare", covers=list(COMPARE) + LOGICAL, weight=1.5)
def _compare(g):
    name = g.choice(list(COMPARE) + LOGICAL)
    a, b = _binary_operands(g, name)
    o = g.value()
    if b is None:
        b = repr(g.choice([0.0, 0.5, 1.0, -1.0]))
        reads = (a,)
    else:
        reads = (a, b)
    if name in COMPARE:
        form = g.choice([f"{a} {COMPARE[name]} {b}", f"T.{name}({a}, {b})", f"{a}.{name}({b})"])
    else:
        form = g.choice([f"T.{name}({a}, {b})"] + ([f"{a}.{name}({b})"] if name != "logical_xor" else []))
    return g.emit(name, f"{o} = {form}", reads, (o,))


@entry("bool_ops", needs=["integer"],
       covers=list(BITWISE) + ["logical_not", "bitwise_not", "isnan", "isfinite"])
def _bool_ops(g):
    name = g.choice(list(BITWISE) + ["logical_not", "bitwise_not", "isnan", "isfinite"])
    o = g.value()
    if name in ("isnan", "isfinite", "logical_not"):
        a = g.pick(dtype="any") or g.new_input()
        return g.emit(name, f"{o} = {g.choice([f'T.{name}({a})', f'{a}.{name}()'])}", (a,), (o,))
    a = g.pick(dtype="bool")
    if a is None:
        src = g.operand()
        a = g.value()
        g.emit("gt", f"{a} = {src} > 0", (src,), (a,))
    if name == "bitwise_not":
        return g.emit(name, f"{o} = {g.choice([f'~{a}', f'T.bitwise_not({a})'])}", (a,), (o,))
    ta = g.t(a)
    b = g.pick(lambda t: g.compatible(ta, t), dtype="bool") or g.new_input(g.broadcast_partner(ta), "bool")
    form = g.choice([f"{a} {BITWISE[name]} {b}", f"T.{name}({a}, {b})"])
    return g.emit(name, f"{o} = {form}", (a, b), (o,))


@entry("where", covers=["where"], weight=1.5)
def _where(g):
    x = g.operand()
    tx = g.t(x)
    c = g.pick(lambda t: g.compatible(tx, t), dtype="bool")
    if c is None:
        c = g.value()
        g.emit("gt", f"{c} = {x} > {g.choice([0.0, 0.5])}", (x,), (c,))
    o = g.value()
    y = g.pick(lambda t: g.compatible(tx, t) and (g.on("mixed_dtype") or t.dtype == tx.dtype))
    forms = [f"T.where({c}, {x}, {y})", f"{x}.where({c}, {y})"] if y else []
    if g.on("scalars"):
        forms += [f"T.where({c}, {x}, 0.0)", f"T.where({c}, 2.0, {x})"]
    if g.on("scalar_where"):
        forms.append(f"T.where({c}, 2.0, -1.0)")
    if not forms:
        return False
    form = g.choice(forms)
    return g.emit("where", f"{o} = {form}", tuple(n for n in (c, x, y) if n and n in form), (o,))


@entry("clamp", covers=["clamp", "clamp_tensor_min", "clamp_tensor_max", "clamp_tensor"],
       weight=1.5)
def _clamp(g):
    a = g.operand()
    vals = g.t(a).detach().flatten().tolist()
    bound = lambda: g.choice(vals) if g.on("ties") and g.coin(0.6) else g.choice([-0.5, 0.0, 0.5, 1.0])  # noqa: E731
    lo, hi = sorted([bound(), bound()])
    o = g.value()
    forms = [f"{a}.clamp({lo!r}, {hi!r})", f"T.clamp({a}, min={lo!r})", f"{a}.clamp(max={hi!r})",
             f"{a}.clip({lo!r}, {hi!r})", f"T.clamp({a}, {hi!r}, {lo!r})"]
    reads = (a,)
    if g.on("clamp_tensor") and g.coin(0.2):
        b = g.pick(lambda t: g.compatible(g.t(a), t) and t.dtype == g.t(a).dtype)
        if b:
            forms = [f"T.clamp({a}, min={b})", f"{a}.clamp(max={b})"]
            reads = (a, b)
            c = g.pick(lambda t: g.compatible(g.t(a), t) and g.compatible(g.t(b), t)
                       and t.dtype == g.t(a).dtype)
            if c:
                forms += [f"{a}.clamp({b}, {c})", f"T.clamp({a}, min={c}, max={b})"]
                reads = (a, b, c)
    return g.emit("clamp", f"{o} = {g.choice(forms)}", reads, (o,))


def _dims_src(d):
    return "" if d is None else repr(d)


@entry("reduce", needs=["reductions"],
       covers=["sum", "mean", "amax", "amin", "max_all", "min_all", "max_dim", "min_dim",
               "argmax", "argmin", "onehot_along", "var", "std", "logsumexp", "softmax",
               "log_softmax"], weight=4)
def _reduce(g):
    name = g.choice(["sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "var",
                     "std", "logsumexp", "softmax", "log_softmax", "norm"])
    a = g.operand()
    t = g.t(a)
    o = g.value()
    keep = g.coin(0.3)
    kd = ", keepdim=True" if keep else ""
    if name in ("sum", "mean", "amax", "amin", "var", "std", "norm"):
        d = g.dim(t)
        if name in ("amax", "amin") and d is None:
            call = f"{a}.{name}()"
        elif d is None:
            extra = {"var": g.choice(["", "unbiased=False", "correction=0"]),
                     "std": g.choice(["", "unbiased=False"]),
                     "norm": g.choice(["", "p=1", "p=float('inf')", "p=2"])}.get(name, "")
            call = f"{a}.{name}({extra})"
        else:
            extra = ", correction=0" if name in ("var", "std") and g.coin(0.3) else ""
            if name == "norm":
                call = f"{a}.norm(dim={d!r}{kd})"
            else:
                call = g.choice([f"{a}.{name}({d!r}{kd}{extra})", f"T.{name}({a}, dim={d!r}{kd}{extra})"])
        if name == "std" and not g.on("std_zero"):
            return g.emit(name, f"{o} = {call}", (a,), (o,), reject=lambda t: bool((t == 0).any()))
        return g.emit(name, f"{o} = {call}", (a,), (o,))
    if name in ("logsumexp", "softmax", "log_softmax"):
        d = g.int_dim(t)
        if d is None:
            d = 0 if g.on("dim_on_0d") else None
            if d is None:
                return False
        call = (g.choice([f"T.logsumexp({a}, {d}{kd})", f"{a}.logsumexp({d}{kd})"]) if name == "logsumexp"
                else g.choice([f"T.{name}({a}, {d})", f"{a}.{name}({d})", f"T.{name}({a}, dim={d})"]))
        return g.emit(name, f"{o} = {call}", (a,), (o,))
    if name in ("argmax", "argmin"):
        d = g.int_dim(t) if g.coin(0.6) else None
        call = f"{a}.{name}()" if d is None else f"{a}.{name}({d}{kd})"
        return g.emit(name, f"{o} = {call}", (a,), (o,))
    # max / min: all, or (values, indices) along a dim
    d = g.int_dim(t) if g.coin(0.6) else None
    if d is None:
        return g.emit(name, f"{o} = {a}.{name}()", (a,), (o,))
    i = g.value()
    call = g.choice([f"{a}.{name}({d}{kd})", f"T.{name}({a}, dim={d}{kd})"])
    return g.emit(name + "(dim)", f"{o}, {i} = {call}", (a,), (o, i))


def _factor(g, n):
    """A random shape with ``n`` elements (maybe with a -1)."""
    dims, rest = [], n
    for p in (2, 3, 2, 2):
        if rest % p == 0 and g.coin(0.5):
            dims.append(p)
            rest //= p
    dims.append(rest)
    g.rng.shuffle(dims)
    dims = [int(x) for x in dims]
    if g.on("size_one") and g.coin(0.2):
        dims.insert(int(g.rng.integers(0, len(dims) + 1)), 1)
    if g.coin(0.3):
        dims[int(g.rng.integers(len(dims)))] = -1
    return tuple(dims)


@entry("reshape", needs=["shape_ops"], covers=["reshape"], weight=2)
def _reshape(g):
    a = g.operand(dtype=None)
    t = g.t(a)
    o = g.value()
    shape = _factor(g, t.numel())
    nd = max(t.ndim, 1)
    forms = [f"{a}.reshape{shape!r}" if len(shape) > 1 else f"{a}.reshape({shape[0]})",
             f"T.reshape({a}, {shape!r})"] + ([f"{a}.flatten()"] if t.ndim >= 2 or g.on("trivial_views") else [])
    if g.on("views"):
        forms += [f"{a}.view{shape!r}" if len(shape) > 1 else f"{a}.view({shape[0]})",
                  f"{a}.view(-1)"]
    if t.ndim >= 2:
        s = int(g.rng.integers(0, nd))
        e = int(g.rng.integers(s, nd))
        if s < e or g.on("trivial_views"):   # flatten(d, d) returns the input itself
            forms += [f"{a}.flatten({s}, {e})", f"T.flatten({a}, start_dim={s - nd}, end_dim={e})"]
    if t.ndim >= 1 and t.shape[0] in (4, 6):
        forms.append(f"{a}.unflatten(0, (2, {t.shape[0] // 2}))")
    b = g.pick(lambda u: u.numel() == t.numel() and u is not t, dtype="any")
    if b:
        forms += [f"{a}.reshape_as({b})"] + ([f"{a}.view_as({b})"] if g.on("views") else [])
    form = g.choice(forms)
    return g.emit(form.split("(")[0].split(".")[-1], f"{o} = {form}",
                  (a, b) if b and b in form else (a,), (o,))


@entry("transpose", needs=["shape_ops"], covers=["transpose", "permute"], weight=2)
def _transpose(g):
    a = g.operand(lambda t: t.ndim >= 1)
    t = g.t(a)
    o = g.value()
    nd = t.ndim
    if nd == 0:
        forms = ([f"{a}.t()"] if g.on("trivial_views") else []) + \
            ([f"{a}.transpose(0, -1)", f"{a}.permute()"] if g.on("dim_on_0d") else [])
        if not forms:
            return False
    else:
        perm = tuple(int(p) for p in g.rng.permutation(nd))
        d0, d1 = int(g.rng.integers(-nd, nd)), int(g.rng.integers(-nd, nd))
        forms = [f"{a}.permute{perm!r}" if nd > 1 else f"{a}.permute(0)", f"T.permute({a}, {perm!r})",
                 f"{a}.transpose({d0}, {d1})", f"T.transpose({a}, {d0}, {d1})",
                 f"{a}.swapaxes({d0}, {d1})"]
        if nd == 2 or (nd == 1 and g.on("trivial_views")):
            forms += [f"{a}.t()", f"T.t({a})"]
        if nd >= 2 or g.on("trivial_views"):
            forms.append(f"{a}.T" if nd != 3 else f"{a}.mT")
    form = g.choice(forms)
    label = form.split("(")[0].split(".")[-1]
    return g.emit(label, f"{o} = {form}", (a,), (o,))


@entry("squeeze", needs=["shape_ops"], covers=["squeeze", "unsqueeze"], weight=1.5)
def _squeeze(g):
    a = g.operand()
    t = g.t(a)
    o = g.value()
    nd = t.ndim
    if g.coin(0.5):
        d = int(g.rng.integers(-nd - 1, nd + 1))
        form = g.choice([f"{a}.unsqueeze({d})", f"T.unsqueeze({a}, {d})", f"{a}[None]"])
        return g.emit("unsqueeze", f"{o} = {form}", (a,), (o,))
    ones = [i for i, s in enumerate(t.shape) if s == 1]
    forms = [f"{a}.squeeze()"]
    if ones:
        forms += [f"{a}.squeeze({g.choice(ones)})", f"T.squeeze({a}, {tuple(ones)!r})"]
    if nd and g.coin(0.3):
        forms.append(f"{a}.squeeze({int(g.rng.integers(-nd, nd))})")
    if nd == 0 and g.on("dim_on_0d"):
        forms.append(f"{a}.squeeze(0)")
    return g.emit("squeeze", f"{o} = {g.choice(forms)}", (a,), (o,))


@entry("expand", needs=["shape_ops"], covers=["expand", "sum_to_size"], weight=1.5)
def _expand(g):
    a = g.operand()
    t = g.t(a)
    o = g.value()
    shape = tuple(g.choice([2, 3]) if s == 1 else s for s in t.shape)
    if g.coin(0.4) or not shape:
        shape = (g.choice([1, 2]),) + shape
    if g.coin(0.5) or (t.ndim == 0 and not g.on("dim_on_0d")):  # (0-d: sum_to_size(()) is a sum)
        form = g.choice([f"{a}.expand{shape!r}", f"{a}.broadcast_to({shape!r})",
                         f"{a}.expand({', '.join(['-1'] * (len(shape) - t.ndim) + ['-1'] * t.ndim)})"
                         if t.ndim == len(shape) else f"{a}.expand{shape!r}"])
        return g.emit("expand", f"{o} = {form}", (a,), (o,))
    target = tuple(1 if g.coin(0.5) else s for s in t.shape[int(g.rng.integers(0, t.ndim + 1)):])
    form = f"{a}.sum_to_size({', '.join(map(str, target))})" if target else f"{a}.sum_to_size(())"
    return g.emit("sum_to_size", f"{o} = {form}", (a,), (o,))


@entry("split", needs=["shape_ops"], covers=["cat", "stack"], weight=2)
def _split(g):
    a = g.operand(lambda t: t.ndim >= 1)
    t = g.t(a)
    if t.ndim == 0:
        return False
    d = int(g.rng.integers(-t.ndim, t.ndim))
    n = t.shape[d]
    kind = g.choice(["cat", "stack", "split", "chunk", "unbind", "narrow"])
    if kind in ("cat", "stack"):
        same = (lambda u: u.ndim == t.ndim and all(x == y for k, (x, y) in enumerate(zip(u.shape, t.shape))
                                                    if k != d % t.ndim)) if kind == "cat" else \
               (lambda u: tuple(u.shape) == tuple(t.shape))
        b = g.pick(lambda u: same(u) and u.dtype == t.dtype)
        if b is None:
            shape = list(t.shape)
            if kind == "cat":
                shape[d] = g.choice([1, 2])
            b = g.new_input(tuple(shape), dtype=str(t.dtype).rsplit(".", 1)[-1])
        o = g.value()
        dd = d if kind == "cat" else int(g.rng.integers(-t.ndim - 1, t.ndim + 1))
        form = g.choice([f"T.{kind}([{a}, {b}], {dd})", f"T.{kind}(({a}, {b}, {a}), dim={dd})"])
        return g.emit(kind, f"{o} = {form}", (a, b), (o,))
    if kind == "narrow":
        start = int(g.rng.integers(0, n))
        length = int(g.rng.integers(0, n - start + 1))
        o = g.value()
        return g.emit("narrow", f"{o} = {a}.narrow({d}, {start}, {length})", (a,), (o,))
    if kind == "split":
        size = int(g.rng.integers(1, n + 1))
        parts = -(-n // size)
        arg = size
        if g.coin(0.4) and n >= 2:
            first = int(g.rng.integers(1, n))
            arg, parts = [first, n - first], 2
    elif kind == "chunk":
        chunks = int(g.rng.integers(1, n + 1))
        size = -(-n // chunks)
        parts = -(-n // size)
        arg = chunks
    else:
        parts, arg = n, None
    if parts > 4:
        return False
    outs = [g.value() for _ in range(parts)]
    call = (f"{a}.unbind({d})" if kind == "unbind" else
            f"{a}.split({arg!r}, {d})" if kind == "split" else f"{a}.chunk({arg}, {d})")
    return g.emit(kind, f"{', '.join(outs)}, = {call}", (a,), tuple(outs))


@entry("convert", covers=["convert", "to_device", "clone"], weight=1.5)
def _convert(g):
    a = g.operand()
    o = g.value()
    forms = [f"{a}.clone()", f"T.clone({a})", f"{a}.to('cpu')", f"{a}.contiguous()"]
    if g.on("float32"):
        forms += [f"{a}.float()", f"{a}.to(T.float32)", f"{a}.double()", f"{a}.to(T.float64)"]
    if g.on("integer"):
        forms += [f"{a}.long()", f"{a}.to(T.bool)"]
    form = g.choice(forms)
    label = form.split("(")[0].split(".")[-1]
    return g.emit(label, f"{o} = {form}", (a,), (o,))


@entry("detach", needs=["detach"])
def _detach(g):
    a = g.operand()
    o = g.value()
    form = g.choice([f"{a}.detach()", f"{a}.data", f"{a}.detach() * {a}"]
                    + ([f"{a}.detach().requires_grad_()"] if g.on("requires_grad_inside") else []))
    return g.emit(form.split("(")[0].split(".")[-1] if "*" not in form else "detach", f"{o} = {form}", (a,), (o,))


def _basic_index(g, t):
    """A basic index expression (int, slice, None, ...) valid for ``t``."""
    if t.ndim == 0:
        return g.choice(["[None]", "[...]", "[()]"])
    parts = []
    for k in range(int(g.rng.integers(1, t.ndim + 1))):
        n = t.shape[k]
        r = g.rng.random()
        if r < 0.3:
            parts.append(str(int(g.rng.integers(-n, n))))
        elif r < 0.8:
            lo = int(g.rng.integers(-n, n))
            hi = int(g.rng.integers(lo % n, n + 1)) if g.coin(0.7) else ""
            step = g.choice(["", "", ":2", ":-1"]) if g.coin(0.3) else ""
            if step == ":-1":
                step = ""  # PyTorch refuses negative steps: an invalid index, drawn by "invalid"
            parts.append(f"{lo}:{hi}{step}")
        elif r < 0.9:
            parts.append("None")
        else:
            parts.append(":")
    if g.coin(0.2):
        parts = ["..."] + parts[1:]
    return "[" + ", ".join(parts) + "]"


@entry("index", needs=["indexing_basic"], covers=["getitem", "index_backward"], weight=2.5)
def _index(g):
    a = g.operand(dtype=None)
    t = g.t(a)
    o = g.value()
    if g.on("indexing_advanced") and t.ndim >= 1 and g.coin(0.5):
        n = t.shape[0]
        idx = [int(g.rng.integers(-n, n)) for _ in range(int(g.rng.integers(1, 4)))]
        forms = [f"{a}[{idx!r}]", f"{a}[T.tensor({idx!r})]", f"{a}[{a} > 0]",
                 f"{a}.index_select(0, T.tensor({[i % n for i in idx]!r}))",
                 f"T.index_select({a}, -1, T.tensor([0, {t.shape[-1] - 1}]))"]
        if t.ndim >= 2:
            m = t.shape[1]
            jdx = [int(g.rng.integers(0, m)) for _ in idx]
            forms += [f"{a}[{idx!r}, {jdx!r}]", f"{a}[:, {jdx!r}]", f"{a}[T.tensor({idx!r}), 1:]"]
            gi = [[int(g.rng.integers(0, n)) for _ in range(m)] for _ in range(2)]
            forms.append(f"T.gather({a}, 0, T.tensor({gi!r}))")
            gi = [[int(g.rng.integers(0, m))] for _ in range(n)]
            forms.append(f"{a}.gather(1, T.tensor({gi!r}))")
        form = g.choice(forms)
        label = ("gather" if "gather" in form else "index_select" if "index_select" in form
                 else "getitem[mask]" if ">" in form else "getitem[adv]")
        return g.emit(label, f"{o} = {form}", (a,), (o,))
    return g.emit("getitem", f"{o} = {a}{_basic_index(g, t)}", (a,), (o,))


@entry("nonzero", needs=["indexing_advanced"], covers=["nonzero"], weight=0.3)
def _nonzero(g):
    a = g.operand(lambda t: t.ndim > 0 or g.on("dim_on_0d"))
    if g.t(a).ndim == 0 and not g.on("dim_on_0d"):
        return False
    o = g.value()
    return g.emit("nonzero", f"{o} = {g.choice([f'{a}.nonzero()', f'T.nonzero({a})'])}", (a,), (o,))


@entry("matmul", needs=["matmul"], covers=["matmul", "linear", "linear_wgrad"], weight=2)
def _matmul(g):
    a = g.operand(lambda t: t.ndim >= 1)
    t = g.t(a)
    if t.ndim == 0:
        return False
    kind = g.choice(["matmul", "mm", "bmm", "mv", "dot", "outer", "linear"])
    k = t.shape[-1]
    dt = str(t.dtype).rsplit(".", 1)[-1]
    if g.on("mixed_dtype") and g.on("float32") and g.coin(0.15):
        dt = "float32" if dt == "float64" else "float64"
    want = {"matmul": g.choice([(k,), (k, g.choice([1, 2, 3])), (2, k, 2)]),
            "mm": (k, g.choice([1, 2, 3])), "bmm": (t.shape[0], k, 2) if t.ndim == 3 else None,
            "mv": (k,), "dot": (k,), "outer": (g.choice([1, 2, 3]),),
            "linear": (g.choice([1, 2, 3]), k)}[kind]
    if want is None:
        return False
    b = g.pick(lambda u: tuple(u.shape) == want and str(u.dtype).endswith(dt)) or g.new_input(want, dt)
    o = g.value()
    if kind == "matmul":
        form = g.choice([f"{a} @ {b}", f"T.matmul({a}, {b})", f"{a}.matmul({b})"])
    elif kind == "linear":
        bias = g.new_input((want[0],), dt) if g.coin(0.6) else None
        form = f"T.nn.functional.linear({a}, {b}{', ' + bias if bias else ''})"
        return g.emit("linear", f"{o} = {form}", (a, b) + ((bias,) if bias else ()), (o,))
    else:
        form = g.choice([f"T.{kind}({a}, {b})", f"{a}.{kind}({b})"])
    return g.emit(kind, f"{o} = {form}", (a, b), (o,))


@entry("functional", needs=["nn_functional"], weight=1.5)
def _functional(g):
    name = g.choice(["relu", "softmax", "log_softmax", "mse_loss", "cross_entropy", "nll_loss"])
    o = g.value()
    F = "T.nn.functional"
    if name in ("relu", "softmax", "log_softmax"):
        a = g.operand()
        t = g.t(a)
        if name == "relu":
            return g.emit("F.relu", f"{o} = {F}.relu({a})", (a,), (o,))
        d = g.int_dim(t)
        if d is None:
            return False
        return g.emit("F." + name, f"{o} = {F}.{name}({a}, dim={d})", (a,), (o,))
    if name == "mse_loss":
        a = g.operand()
        t = g.t(a)
        b = g.pick(lambda u: tuple(u.shape) == tuple(t.shape) and u.dtype == t.dtype and u is not t)
        b = b or g.new_input(tuple(t.shape), str(t.dtype).rsplit(".", 1)[-1])
        red = g.choice(["", ", reduction='sum'", ", reduction='none'"])
        return g.emit("F.mse_loss", f"{o} = {F}.mse_loss({a}, {b}{red})", (a, b), (o,))
    n, c = g.choice([2, 3, 4]), g.choice([2, 3, 4])
    a = g.pick(lambda u: u.ndim == 2) or g.new_input((n, c))
    n, c = g.t(a).shape
    target = g.new_input((n,), "int64")
    g.program.inputs[-1].data = g.rng.integers(0, c, n)
    exec(g.program.inputs[-1].source(), g.ns)
    if g.on("invalid") and g.coin(0.15):
        tgt = f"{target}.to(T.int32)"
    else:
        tgt = target
    red = g.choice(["", ", reduction='sum'", ", reduction='none'"])
    if name == "nll_loss":
        return g.emit("F.nll_loss", f"{o} = {F}.nll_loss({a}.log_softmax(1), {tgt}{red})", (a, target), (o,))
    return g.emit("F.cross_entropy", f"{o} = {F}.cross_entropy({a}, {tgt}{red})", (a, target), (o,))


def _inplace_target(g, through_view):
    """A float name that may be changed in place: a non-leaf or a tensor that does not
    require grad, aliased with nothing else in scope unless ``through_view``."""
    def aliased(t):
        ptr = t.untyped_storage().data_ptr()
        return sum(g.t(n).untyped_storage().data_ptr() == ptr for n in g.vars) > 1
    inputs = {n for i in g.program.inputs for n in i.names()}
    ok = lambda t: (not (t.is_leaf and t.requires_grad)  # noqa: E731
                    and (through_view or not aliased(t)))
    name = g.pick(ok)
    if name in inputs and not g.on("inplace_input"):
        return None
    return name


@entry("inplace", needs=["inplace"], covers=["copy", "fill"], weight=2)
def _inplace(g):
    a = _inplace_target(g, through_view=False)
    if a is None:
        src = g.operand()
        a = g.value()
        g.emit("clone", f"{a} = {src}.clone()", (src,), (a,))
    return _mutate(g, a, a, "")


def _mutate(g, a, target, suffix):
    """Emit an in-place op on ``target`` (an expression over ``a``)."""
    t = g.t(a)
    kind = g.choice(["unary", "binary", "clamp_", "copy_", "fill_", "zero_", "setitem"])
    if kind == "unary":
        name = g.choice(INPLACE_UNARY)
        code = f"{target}.{name}()"
        if name == "sqrt_":
            code = f"{target}.abs_().sqrt_()"
        return g.emit(name + suffix, code, (a,), (), (a,))
    if kind == "binary":
        name = g.choice(INPLACE_BINARY)
        if g.on("scalars") and g.coin(0.4):
            s = g.choice([2.0, -0.5, 3])
            code = g.choice([f"{target}.{name}({s!r})", f"{target} {INPLACE_BINARY[name]} {s!r}"
                             if target == a else f"{target}.{name}({s!r})"])
            return g.emit(name + suffix, code, (a,), (), (a,))
        b = g.pick(lambda u: g.compatible(t, u) and u.dtype == t.dtype
                   and len(u.shape) <= t.ndim and u is not t)
        if b is None:
            b = g.new_input(g.broadcast_partner(t)[-t.ndim:] if t.ndim else (), str(t.dtype).rsplit(".", 1)[-1])
        code = (f"{target} {INPLACE_BINARY[name]} {b}" if target == a and g.coin(0.5)
                else f"{target}.{name}({b})")
        return g.emit(name + suffix, code, (a, b), (), (a,))
    if kind == "clamp_":
        return g.emit("clamp_" + suffix, f"{target}.clamp_({g.choice([-0.5, 0.0])}, {g.choice([0.5, 1.0])})",
                      (a,), (), (a,))
    if kind == "copy_":
        b = g.pick(lambda u: g.compatible(t, u) and len(u.shape) <= t.ndim and u is not t)
        if b is None:
            return False
        return g.emit("copy_" + suffix, f"{target}.copy_({b})", (a, b), (), (a,))
    if kind == "fill_":
        return g.emit("fill_" + suffix, f"{target}.fill_({g.scalar()!r})", (a,), (), (a,))
    if kind == "zero_":
        return g.emit("zero_" + suffix, f"{target}.zero_()", (a,), (), (a,))
    idx = _basic_index(g, t) if not (g.on("indexing_advanced") and g.coin(0.4)) else \
        (f"[{[int(g.rng.integers(0, t.shape[0]))]!r}]" if t.ndim else "[...]")
    if g.coin(0.5):
        return g.emit("setitem" + suffix, f"{target}{idx} = {g.scalar()!r}", (a,), (), (a,))
    b = g.pick(lambda u: u.ndim == 0 and u.dtype == t.dtype) or g.new_input((), str(t.dtype).rsplit(".", 1)[-1])
    return g.emit("setitem" + suffix, f"{target}{idx} = {b}", (a, b), (), (a,))


@entry("setitem", needs=["setitem"], covers=["index_put"], weight=1)
def _setitem(g):
    a = _inplace_target(g, through_view=False)
    if a is None:
        src = g.operand()
        a = g.value()
        g.emit("clone", f"{a} = {src} * 1", (src,), (a,))
    t = g.t(a)
    idx = _basic_index(g, t)
    o = g.value()
    b = g.pick(lambda u: u.ndim == 0 and u.dtype == t.dtype) or g.new_input((), str(t.dtype).rsplit(".", 1)[-1])
    code = f"{a}{idx} = {b}"
    if g.coin(0.5):  # a later read, so the CopySlices history is used
        code += f"\n{o} = {a} * 2"
        return g.emit("setitem", code, (a, b), (o,), (a,))
    return g.emit("setitem", code, (a, b), (), (a,))


@entry("inplace_view", needs=["inplace_view"], weight=2)
def _inplace_view(g):
    a = _inplace_target(g, through_view=True)
    if a is None:
        src = g.operand()
        a = g.value()
        g.emit("clone", f"{a} = {src}.clone()", (src,), (a,))
    t = g.t(a)
    if t._base is not None or g.coin(0.3):   # the view itself, or its base, in scope
        return _mutate(g, a, a, " (view)" if t._base is not None else "")
    views = [f"{a}{_basic_index(g, t)}"] if t.ndim else [f"{a}[None]"]
    views += [f"{a}.view(-1)", f"{a}.unsqueeze(0)"] + ([f"{a}.t()"] if t.ndim == 2 else []) \
        + ([f"{a}.transpose(0, -1)"] if t.ndim else []) + ([f"{a}.narrow(0, 0, 1)"] if t.ndim else [])
    v = g.choice(views)
    if g.coin(0.4):   # keep the view in scope, mutate later through either
        o = g.value()
        return g.emit("view", f"{o} = {v}", (a,), (o,))
    return _mutate(g, a, v, " (view)")


@entry("invalid", needs=["invalid"], weight=1)
def _invalid(g):
    a = g.operand()
    t = g.t(a)
    o = g.value()
    nd = t.ndim
    forms = [f"T.clamp({a})", f"{a}.permute({', '.join(['0'] * (nd + 1))})",
             f"{a}.sum({nd + 1})", f"{a}.reshape({t.numel() + 1})", f"{a}.transpose(0, {nd + 2})",
             f"{a}.unsqueeze({nd + 2})", f"{a}.softmax({nd + 1})", f"{a}.expand(())",
             f"{a}.max(dim={nd + 1})", f"{a}.mean(dtype=T.int64)", f"{a}[{a} > 0] @ {a}",
             f"{a}.view(2, -1, 5)", f"{a}.squeeze({nd + 3})", f"T.cat([{a}, {a}.sum()])",
             f"T.stack([{a}, {a}[None]])", f"{a} @ {a}.unsqueeze(0)"]
    if nd >= 1:
        forms += [f"{a}[{t.shape[0]}]", f"{a}.split([1, {t.shape[0]}])", f"{a}.t().view(-1)",
                  f"{a}.long().mean()", f"{a}.narrow(0, 1, {t.shape[0]})"]
    if nd == 2:
        forms += [f"{a}.t().view({t.numel()})", f"{a}.mm({a})" if t.shape[0] != t.shape[1] else f"{a}.mv({a})"]
    if t.is_leaf and t.requires_grad:
        forms += [f"{a}.mul_(2)", f"{a}[0:1].fill_(0)" if nd else f"{a}.zero_()"]
    if g.on("float32") and g.on("mixed_dtype"):
        b = g.new_input(tuple(t.shape) if nd else (2,), dtype="float32" if "64" in str(t.dtype) else "float64")
        forms += [f"{a} @ {b}", f"T.nn.functional.linear({a}, {b})"]
    form = g.choice(forms)
    return g.emit("invalid:" + _label_of(form, a), f"{o} = {form}", (), (o,), invalid=True)


def _label_of(form, a):
    body = form.replace("T.nn.functional.", "F.").replace("T.", "")
    body = body.replace(a, "x", 1)
    return body.split("(")[0].lstrip("x.").split("[")[0] or "getitem"
