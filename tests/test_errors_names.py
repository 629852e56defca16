"""tracegrad/_errors.py's tables of PyTorch's type names, checked against PyTorch's own messages."""
import re

import pytest

import tracegrad as tg
from tracegrad._errors import CPP_TYPE_NAME, SCALAR_TYPE_NAME

torch = pytest.importorskip("torch")

_NAMES = sorted(SCALAR_TYPE_NAME)


@pytest.mark.parametrize("name", _NAMES)
def test_cpp_type_name_is_what_a_torch_kernel_check_prints(name):
    other = "float64" if name == "float32" else "float32"
    with pytest.raises(RuntimeError) as info:
        torch.ones(2, 2, dtype=getattr(torch, other)) @ torch.ones(2, 2, dtype=getattr(torch, name))
    got = re.search(r"but got: (.*) != (.*)$", str(info.value)).groups()
    assert got == (CPP_TYPE_NAME[other], CPP_TYPE_NAME[name])


@pytest.mark.parametrize("name", [n for n in _NAMES if n != "bool"])
def test_scalar_type_name_is_what_torch_calls_the_dtype(name):
    # "result type Float can't be cast to the desired output type Bool": the in-place cast check
    with pytest.raises(RuntimeError) as info:
        torch.zeros(2, dtype=torch.bool).add_(torch.ones(2, dtype=getattr(torch, name)))
    assert re.search(r"result type (\w+) can't", str(info.value)).group(1) == SCALAR_TYPE_NAME[name]
    with pytest.raises(RuntimeError, match=f"result type {SCALAR_TYPE_NAME[name]} can't be cast "
                                           "to the desired output type Bool"):
        tg.zeros(2, dtype=tg.bool).add_(tg.ones(2, dtype=getattr(tg, name)))
