"""For every registered op, the ``Tensor`` methods PyTorch has under the op's name (or its
public function's name) exist on tracegrad's Tensor too (checked against ``dir(torch.Tensor)``)."""
from __future__ import annotations

import pytest

import tracegrad
import tracegrad.nn.functional  # noqa: F401  (registers the nn op families)
from tracegrad.ops import REG

# torch.Tensor.index_put(indices, values) is a different API from tracegrad's internal op
# of that name (x[idx] = v), which is reached through __setitem__
NOT_METHODS = {"index_put"}


def test_tensor_methods_of_registered_ops_exist(torch_ref):
    missing = []
    for op in REG.values():
        for name in {op.name, getattr(op.public, "__name__", op.name)}:
            if name in NOT_METHODS or not name.isidentifier():
                continue
            if hasattr(torch_ref.Tensor, name) and not hasattr(tracegrad.Tensor, name):
                missing.append(name)
            inplace = name + "_"
            if (hasattr(torch_ref.Tensor, inplace) and hasattr(tracegrad.Tensor, name)
                    and name in _CHECK_INPLACE and not hasattr(tracegrad.Tensor, inplace)):
                missing.append(inplace)
    assert not missing, f"Tensor methods PyTorch has and tracegrad lacks: {sorted(missing)}"


# the in-place variants this branch provides (the older ops' in-place set is tracked elsewhere)
_CHECK_INPLACE = {"erf", "erfc", "floor", "ceil", "round", "trunc", "frac", "atan2", "hypot",
                  "lerp", "tril", "triu", "masked_fill"}


@pytest.mark.parametrize("name,args", [("floor_", ()), ("atan2_", (2.0,)), ("lerp_", (1.0, 0.5)),
                                       ("tril_", ()), ("erf_", ())])
def test_inplace_variants_match_out_of_place(name, args):
    x = tracegrad.tensor([[0.3, -1.2], [2.5, 0.7]])
    want = getattr(x, name[:-1])(*[tracegrad.tensor(a) if isinstance(a, float) and name ==
                                   "atan2_" else a for a in args])
    y = x.clone()
    v = y._version
    out = getattr(y, name)(*[tracegrad.tensor(a) if isinstance(a, float) and name == "atan2_"
                            else a for a in args])
    assert out is y and y._version == v + 1
    assert tracegrad.equal(y, want)
