"""Device placement: compiled programs on ``tg.device('cuda')`` (marked ``gpu``, skipped where
jax sees no GPU), the same checks run on the CPU everywhere, and PyTorch's errors for 'cuda'
on a machine without one. The checks themselves live in scripts/gpu_check.py."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import tracegrad as tg

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_gpu_check():
    spec = importlib.util.spec_from_file_location(
        "gpu_check", os.path.join(_ROOT, "scripts", "gpu_check.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def gpu_check():
    return _load_gpu_check()


NEEDS_GPU = [pytest.mark.gpu,
             pytest.mark.skipif(not tg.cuda.is_available(), reason="needs a GPU visible to jax")]
NEEDS_NO_GPU = pytest.mark.skipif(tg.cuda.is_available(), reason="needs a machine without a GPU")

CHECK_NAMES = ["check_spec_example", "check_mlp_step", "check_hooks", "check_placement"]


# ------------------------------------------------------------------------- on a GPU
@pytest.mark.parametrize("name", CHECK_NAMES)
@NEEDS_GPU[0]
@NEEDS_GPU[1]
def test_compiled_on_gpu(gpu_check, name):
    """Compiled forward + backward on 'cuda' match the CPU and stay on the GPU."""
    getattr(gpu_check, name)(tg)


@NEEDS_GPU[0]
@NEEDS_GPU[1]
def test_compiled_outputs_and_grads_live_on_gpu():
    x = tg.randn(8, 4, device="cuda", requires_grad=True)
    w = tg.randn(4, 3, device="cuda", requires_grad=True)
    f = tg.compile(lambda x: (x @ w).tanh().sum(dim=0))
    y = f(x)
    # as PyTorch: a tensor placed on 'cuda' reports the concrete device cuda:0
    assert y.device == tg.device("cuda:0") and y.grad_fn.name() == "CompiledFunctionBackward"
    y.sum().backward()  # y dies before its node runs: the grads still land on the GPU
    for t in (x.grad, w.grad):
        assert t.device.type == "cuda"
        assert next(iter(t._data.value.devices())).platform == "gpu"


# ------------------------------------------------------------------------- everywhere
@pytest.mark.parametrize("name", CHECK_NAMES)
def test_gpu_checks_logic_on_cpu(gpu_check, monkeypatch, name):
    """The GPU checks themselves, with 'cpu' in place of 'cuda', so they are known to work
    before a GPU machine runs them."""
    monkeypatch.setattr(gpu_check, "GPU", "cpu")
    monkeypatch.setattr(gpu_check, "PLATFORM", "cpu")
    getattr(gpu_check, name)(tg)


def test_gpu_check_fails_loudly_when_devices_disagree(gpu_check, monkeypatch):
    monkeypatch.setattr(gpu_check, "GPU", "cpu")
    monkeypatch.setattr(gpu_check, "PLATFORM", "gpu")  # a cpu array is not on the GPU
    with pytest.raises(AssertionError, match="expected gpu"):
        gpu_check.check_spec_example(tg)


@NEEDS_NO_GPU
def test_gpu_check_skips_without_gpu(gpu_check, capsys):
    assert gpu_check.main(["--no-bench"]) == 0
    assert "SKIP: no GPU" in capsys.readouterr().out


def test_compiled_on_cpu_device_keeps_device():
    x = tg.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), device="cpu", requires_grad=True)
    w = tg.ones(3, device=tg.device("cpu"), requires_grad=True)
    f = tg.compile(lambda x: (x * w).to("cpu").sum())
    y = f(x)
    assert y.device == tg.device("cpu") and y.device.type == "cpu"
    y.backward()
    assert x.grad.device.type == "cpu" and w.grad.device.type == "cpu"
    np.testing.assert_allclose(w.grad.numpy(), [3.0, 5.0, 7.0])
    assert x.to("cpu") is x  # PyTorch: .to() to the same device returns self
    assert x.cpu() is x


def test_compiled_function_of_no_arguments_reads_its_captured_tensor():
    w = tg.ones(3, device="cpu", requires_grad=True)
    f = tg.compile(lambda: (w * 2).sum())
    y = f()
    assert y.device.type == "cpu"
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), [2.0, 2.0, 2.0])


def test_device_objects_need_no_gpu():
    d = tg.device("cuda")  # as in PyTorch, naming a device does not touch it
    assert (d.type, d.index, str(d)) == ("cuda", None, "cuda")
    assert tg.device("cuda:1") == tg.device("cuda", 1)
    assert tg.device("cpu") == "cpu"
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda device type"):
        tg.device("tpu")


@NEEDS_NO_GPU
@pytest.mark.parametrize("make", [
    lambda: tg.ones(2, device="cuda"),
    lambda: tg.tensor([1.0], device="cuda:0"),
    lambda: tg.ones(2).to("cuda"),
    lambda: tg.ones(2).cuda(),
    lambda: tg.ones(2).to(tg.device("cuda")),
    lambda: tg.cuda.current_device(),
], ids=["ones", "tensor", "to", "cuda()", "to(device)", "current_device"])
def test_cuda_without_gpu_raises_like_pytorch(make):
    # PyTorch (CUDA build, no GPU): RuntimeError: No CUDA GPUs are available
    with pytest.raises(RuntimeError, match="No CUDA GPUs are available"):
        make()
    # the failed call leaves the CPU path working
    assert (tg.ones(2) + 1).device.type == "cpu"


@NEEDS_NO_GPU
def test_cuda_namespace_without_gpu():
    assert tg.cuda.is_available() is False
    assert tg.cuda.device_count() == 0

