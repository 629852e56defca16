"""tracegrad.save / tracegrad.load in PyTorch's zip format (both directions, against torch
where installed; the checked-in fixture written by torch without it), the weights_only
unpickler, Module.load_state_dict's reports, and tracegrad.utils.safetensors."""
import collections
import io
import os
import pathlib
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import tracegrad as tg
from tracegrad import nn
from tracegrad.utils import safetensors as st

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"


def _np(t):
    return t.detach().numpy()


def _round_trip(obj, **kw):
    buf = io.BytesIO()
    tg.save(obj, buf)
    buf.seek(0)
    return tg.load(buf, **kw)


# ------------------------------------------------------------------ the torch-written fixture
def test_a_checkpoint_written_by_torch_loads_without_torch():
    ck = tg.load(FIXTURES / "torch_checkpoint.pt")
    ex = np.load(FIXTURES / "torch_checkpoint_expected.npz")
    sd = ck["model"]
    assert isinstance(sd, collections.OrderedDict)
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for k, v in sd.items():
        assert v.dtype is tg.float32 and np.array_equal(_np(v), ex[f"model.{k}"])
    opt = ck["optimizer"]
    assert sorted(opt["state"]) == [0, 1, 2, 3]
    assert opt["param_groups"][0]["params"] == [0, 1, 2, 3]
    assert opt["param_groups"][0]["betas"] == (0.9, 0.999) and opt["param_groups"][0]["lr"] == 0.01
    for i, s in opt["state"].items():
        for k, v in s.items():
            assert np.array_equal(_np(v), ex[f"optimizer.{i}.{k}"])
    assert ck["view"].shape == (2, 2) and np.array_equal(_np(ck["view"]), ex["view"])
    assert np.array_equal(_np(ck["base"]), ex["base"])
    assert ck["ints"].dtype is tg.int64 and ck["ints"].tolist() == [1, -2, 3]
    assert ck["mask"].dtype is tg.bool and ck["mask"].tolist() == [True, False]
    assert ck["half"].dtype is tg.bfloat16 and ck["half"].float().tolist() == [0.5, -1.25]
    assert isinstance(ck["param"], nn.Parameter) and ck["param"].requires_grad
    assert ck["meta"] == collections.OrderedDict(epoch=3, name="digits", lrs=(0.1, 0.01),
                                                 done=None)
    # the same model in tracegrad, given torch's weights, computes torch's outputs
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert model.load_state_dict(sd) == ([], [])
    y = model(tg.tensor(ex["x"]))
    assert np.allclose(_np(y), ex["y"], atol=1e-6)


def test_loading_the_torch_fixture_never_imports_torch():
    # in a fresh interpreter where `import torch` would fail
    code = ("import sys; sys.modules['torch'] = None\n"
            "import tracegrad as tg, numpy as np\n"
            f"ck = tg.load({str(FIXTURES / 'torch_checkpoint.pt')!r})\n"
            "assert sorted(ck['model']) == ['0.bias', '0.weight', '2.bias', '2.weight']\n"
            "print('ok')\n")
    root = str(pathlib.Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=root, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_the_torch_checkpoint_optimizer_state_loads_into_adam():
    ck = tg.load(FIXTURES / "torch_checkpoint.pt")
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model.load_state_dict(ck["model"])
    opt = tg.optim.Adam(model.parameters(), lr=0.5)
    opt.load_state_dict(ck["optimizer"])
    assert opt.param_groups[0]["lr"] == 0.01
    p0 = next(iter(model.parameters()))
    assert float(opt.state[p0]["step"]) == 2.0


# ------------------------------------------------------------------ round trips in tracegrad
def test_round_trip_keeps_values_dtypes_shapes_and_containers():
    torch_like = {
        "f": tg.randn(2, 3), "d": tg.arange(4, dtype=tg.float64), "i": tg.tensor([1, 2]),
        "b": tg.tensor([True]), "h": tg.ones(3, dtype=tg.float16),
        "bf": tg.tensor([1.5, -2.0], dtype=tg.bfloat16), "s": tg.tensor(3.0),
        "e": tg.zeros(0, 2), "nested": [(1, "a"), {"x": tg.ones(1)}, None, 2.5],
        "od": collections.OrderedDict(b=1, a=2), "dtype": tg.int32, "size": tg.Size([2, 3]),
        "dev": tg.device("cpu"), "bytes": b"\x00\xff", "set": {1, 2}}
    back = _round_trip(torch_like)
    assert list(back) == list(torch_like)
    for k, v in torch_like.items():
        if isinstance(v, tg.Tensor):
            assert back[k].dtype is v.dtype and back[k].shape == v.shape, k
            assert np.array_equal(_np(back[k]).astype(np.float64), _np(v).astype(np.float64)), k
    assert back["nested"][0] == (1, "a") and back["nested"][1]["x"].tolist() == [1.0]
    assert back["nested"][2:] == [None, 2.5] and isinstance(back["od"], collections.OrderedDict)
    assert back["dtype"] is tg.int32 and back["size"] == tg.Size([2, 3])
    assert back["dev"] == tg.device("cpu") and back["bytes"] == b"\x00\xff"
    assert back["set"] == {1, 2}


def test_shared_storage_is_written_once_and_loads_shared():
    p = nn.Parameter(tg.ones(3))
    back = _round_trip({"param": p, "view": p.detach(), "other": tg.ones(3)})
    assert isinstance(back["param"], nn.Parameter) and back["param"].requires_grad
    assert back["param"]._data is back["view"]._data
    assert back["other"]._data is not back["param"]._data
    with tg.no_grad():
        back["param"].mul_(2)
    assert back["view"].tolist() == [2.0, 2.0, 2.0]


def test_a_file_path_and_the_archive_layout(tmp_path):
    path = tmp_path / "model.pt"
    tg.save({"w": tg.ones(2)}, path)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert names[0] == "model/data.pkl"
        assert {"model/byteorder", "model/version", "model/data/0"} <= set(names)
        assert z.read("model/version") == b"3\n"
        for info in z.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
        info = z.getinfo("model/data/0")
        assert (info.header_offset + 30 + len(info.filename) + len(info.extra)) % 64 == 0
    assert tg.load(str(path))["w"].tolist() == [1.0, 1.0]


def test_requires_grad_round_trips():
    x = tg.ones(2, requires_grad=True)
    back = _round_trip([x, x * 2])
    assert back[0].requires_grad and back[0].is_leaf
    assert back[1].requires_grad and back[1].is_leaf and back[1].tolist() == [2.0, 2.0]


def test_module_and_optimizer_state_dicts_round_trip():
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    model(tg.randn(5, 3)).sum().backward()
    opt.step()
    back = _round_trip({"model": model.state_dict(), "opt": opt.state_dict()})
    twin = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    twin.load_state_dict(back["model"])
    for p, q in zip(model.parameters(), twin.parameters()):
        assert np.array_equal(_np(p), _np(q))
    opt2 = tg.optim.Adam(twin.parameters())
    opt2.load_state_dict(back["opt"])
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


# ------------------------------------------------------------------ weights_only
class Custom:
    def __init__(self):
        self.x = 1


def test_weights_only_refuses_other_globals_naming_them():
    buf = io.BytesIO()
    tg.save({"c": Custom()}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match=r"Unsupported global: GLOBAL "
                       r"(tests\.)?test_serialization.Custom was not an allowed global by default"):
        tg.load(buf)
    buf.seek(0)
    assert tg.load(buf, weights_only=False)["c"].x == 1
    buf.seek(0)
    with tg.serialization.safe_globals([Custom]):
        assert tg.load(buf)["c"].x == 1
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        tg.load(buf)  # the context manager's allowance ended


def _zip_with_pickle(payload):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", b"3\n")
    buf.seek(0)
    return buf


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_weights_only_never_runs_code_from_the_file(tmp_path):
    target = tmp_path / "pwned"
    buf = _zip_with_pickle(pickle.dumps(_Evil(str(target)), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="GLOBAL io.open was not an allowed global"):
        tg.load(buf)
    assert not target.exists()


def test_weights_only_message_is_torchs():
    T = pytest.importorskip("torch")
    buf = io.BytesIO()
    tg.save({"c": Custom()}, buf)
    msgs = []
    for load in (tg.load, T.load):
        buf.seek(0)
        with pytest.raises(pickle.UnpicklingError) as e:
            load(buf)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


def test_a_whole_torch_module_is_refused_as_torch_refuses_it():
    T = pytest.importorskip("torch")
    buf = io.BytesIO()
    T.save(T.nn.Sequential(T.nn.Linear(2, 2)), buf)
    msgs = []
    for load in (tg.load, T.load):
        buf.seek(0)
        with pytest.raises(pickle.UnpicklingError) as e:
            load(buf)
        msgs.append(str(e.value))
    assert "GLOBAL torch.nn.modules.container.Sequential was not an allowed global" in msgs[0]
    assert msgs[0] == msgs[1]


def test_not_a_zip_checkpoint_raises():
    with pytest.raises(RuntimeError, match="zip checkpoint format"):
        tg.load(io.BytesIO(pickle.dumps({"a": 1})))


def test_a_big_endian_file_is_byteswapped():
    buf = io.BytesIO()
    tg.save({"w": tg.tensor([1.5, -2.0, 3.25]), "i": tg.tensor([1, 256])}, buf)
    buf.seek(0)
    src, out = zipfile.ZipFile(buf), io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("byteorder"):
                data = b"big"
            elif info.filename.endswith("data/0"):
                data = np.frombuffer(data, "<f4").astype(">f4").tobytes()
            elif info.filename.endswith("data/1"):
                data = np.frombuffer(data, "<i8").astype(">i8").tobytes()
            z.writestr(info.filename, data)
    out.seek(0)
    back = tg.load(out)
    assert back["w"].tolist() == [1.5, -2.0, 3.25] and back["i"].tolist() == [1, 256]


def test_a_legacy_torch_file_is_refused_with_a_reason():
    T = pytest.importorskip("torch")
    buf = io.BytesIO()
    T.save({"w": T.ones(2)}, buf, _use_new_zipfile_serialization=False)
    buf.seek(0)
    with pytest.raises(RuntimeError, match="legacy torch.save file"):
        tg.load(buf)


def test_map_location():
    w = tg.ones(2)
    for ml in ("cpu", tg.device("cpu"), {"cpu": "cpu"}, lambda storage, loc: storage):
        assert _round_trip(w, map_location=ml).device == tg.device("cpu")


# ------------------------------------------------------------------ against torch
def test_a_file_tracegrad_writes_loads_in_torch_weights_only():
    T = pytest.importorskip("torch")
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    model(tg.randn(2, 3)).sum().backward()
    opt.step()
    obj = {"model": model.state_dict(), "opt": opt.state_dict(), "p": model[0].weight,
           "i": tg.tensor([1, 2]), "bf": tg.tensor([1.5], dtype=tg.bfloat16),
           "b": tg.tensor([True, False]), "s": tg.tensor(2.0, dtype=tg.float64),
           "dtype": tg.float16, "size": tg.Size([1, 2]), "dev": tg.device("cpu")}
    buf = io.BytesIO()
    tg.save(obj, buf)
    buf.seek(0)
    got = T.load(buf, weights_only=True)
    for k, v in obj["model"].items():
        assert got["model"][k].dtype == T.float32 and np.array_equal(got["model"][k].numpy(), _np(v))
    # the state dict's weight and the Parameter share one storage, as they do in tracegrad
    assert got["p"].untyped_storage().data_ptr() == got["model"]["0.weight"].untyped_storage().data_ptr()
    assert isinstance(got["p"], T.nn.Parameter)
    assert got["i"].dtype == T.int64 and got["bf"].dtype == T.bfloat16
    assert got["b"].tolist() == [True, False] and got["s"].dtype == T.float64
    assert got["dtype"] == T.float16 and got["size"] == T.Size([1, 2])
    assert got["dev"] == T.device("cpu")
    twin = T.nn.Sequential(T.nn.Linear(3, 4), T.nn.ReLU(), T.nn.Linear(4, 2))
    twin.load_state_dict(got["model"])
    topt = T.optim.Adam(twin.parameters(), lr=0.01)
    topt.load_state_dict(got["opt"])
    assert float(topt.state_dict()["state"][0]["step"]) == 1.0


def test_torch_can_memory_map_what_tracegrad_writes(tmp_path):
    T = pytest.importorskip("torch")
    path = tmp_path / "m.pt"
    w = tg.randn(5, 7)
    tg.save({"w": w, "b": tg.arange(3)}, path)
    got = T.load(path, mmap=True, weights_only=True)  # needs PyTorch's 64-byte alignment
    assert np.array_equal(got["w"].numpy(), _np(w)) and got["b"].tolist() == [0, 1, 2]


def test_torch_round_trip_of_views_and_dtypes():
    T = pytest.importorskip("torch")
    base = T.arange(24, dtype=T.float32).reshape(4, 6)
    obj = {"t": base.t(), "slice": base[1:3, ::2], "base": base, "h": T.ones(2, dtype=T.half),
           "u8": T.tensor([255], dtype=T.uint8), "i8": T.tensor([-1], dtype=T.int8),
           "i16": T.tensor([7], dtype=T.int16), "i32": T.tensor([9], dtype=T.int32)}
    buf = io.BytesIO()
    T.save(obj, buf)
    buf.seek(0)
    got = tg.load(buf)
    for k, v in obj.items():
        assert str(got[k].dtype).split(".")[1] == str(v.dtype).split(".")[1]
        assert tuple(got[k].shape) == tuple(v.shape)
        assert np.array_equal(_np(got[k]), v.numpy())


# ------------------------------------------------------------------ load_state_dict reports
def _bad_state_dict(sd):
    sd = dict(sd)
    sd.pop("1.bias")
    sd["extra"] = tg.ones(1)
    sd["0.weight"] = tg.ones(4, 4)
    sd["1.weight.foo"] = tg.ones(1)
    sd["2.weight"] = tg.ones(1)
    return sd


def test_load_state_dict_reports_like_torch():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with pytest.raises(RuntimeError) as e:
        model.load_state_dict(_bad_state_dict(model.state_dict()))
    assert str(e.value) == (
        'Error(s) in loading state_dict for Sequential:\n\tMissing key(s) in state_dict: '
        '"1.bias". \n\tUnexpected key(s) in state_dict: "extra", "2.weight", "1.weight.foo". '
        '\n\tsize mismatch for 0.weight: copying a param with shape tracegrad.Size([4, 4]) from '
        'checkpoint, the shape in current model is tracegrad.Size([4, 3]).')
    before = [_np(p).copy() for p in model.parameters()]
    sd = _bad_state_dict(model.state_dict())
    sd["0.weight"] = tg.ones(4, 3)
    r = model.load_state_dict(sd, strict=False)
    assert r.missing_keys == ["1.bias"] and r.unexpected_keys == ["extra", "2.weight",
                                                                   "1.weight.foo"]
    assert np.array_equal(_np(model[0].weight), np.ones((4, 3)))
    assert np.array_equal(_np(model[1].bias), before[3])


def test_load_state_dict_message_equals_torchs():
    T = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    theirs = T.nn.Sequential(T.nn.Linear(3, 4), T.nn.Linear(4, 2))
    with pytest.raises(RuntimeError) as a:
        ours.load_state_dict(_bad_state_dict(ours.state_dict()))
    tsd = dict(theirs.state_dict())
    tsd.pop("1.bias")
    tsd.update({"extra": T.ones(1), "0.weight": T.ones(4, 4), "1.weight.foo": T.ones(1),
                "2.weight": T.ones(1)})
    with pytest.raises(RuntimeError) as b:
        theirs.load_state_dict(tsd)
    assert str(a.value).replace("tracegrad.", "torch.") == str(b.value)
    ok_ours, ok_theirs = ours.load_state_dict(ours.state_dict()), theirs.load_state_dict(theirs.state_dict())
    assert repr(ok_ours) == repr(ok_theirs) == "<All keys matched successfully>"
    loose = ours.load_state_dict({"0.weight": ours[0].weight.detach(), "x": tg.ones(1)}, strict=False)
    tloose = theirs.load_state_dict({"0.weight": theirs[0].weight.detach(), "x": T.ones(1)}, strict=False)
    assert repr(loose) == repr(tloose)


# ------------------------------------------------------------------ safetensors
def test_safetensors_round_trip(tmp_path):
    tensors = {"w": tg.randn(3, 2), "i": tg.tensor([1, 2, 3]), "m": tg.tensor([True, False]),
               "bf": tg.tensor([0.5], dtype=tg.bfloat16), "h": tg.ones(2, dtype=tg.float16),
               "e": tg.zeros(0, 4), "s": tg.tensor(1.0, dtype=tg.float64)}
    path = tmp_path / "m.safetensors"
    st.save_file(tensors, path, metadata={"format": "pt"})
    back = st.load_file(path)
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        assert back[k].dtype is v.dtype and back[k].shape == v.shape
        assert np.array_equal(_np(back[k]).astype(np.float64), _np(v).astype(np.float64))
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0 and b'"__metadata__":{"format":"pt"}' in raw[8:8 + n]


def test_safetensors_layout_is_the_specs():
    data = st.save({"a": tg.tensor([1.0, 2.0])})
    n = int.from_bytes(data[:8], "little")
    import json
    header = json.loads(data[8:8 + n])
    assert header == {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    assert np.frombuffer(data[8 + n:], "<f4").tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="HeaderTooSmall"):
        st.load(b"\x01")
    with pytest.raises(ValueError, match="Key `x` is invalid"):
        st.save({"x": 1})


def test_safetensors_files_agree_with_the_safetensors_package(tmp_path):
    T = pytest.importorskip("torch")
    sft = pytest.importorskip("safetensors.torch")
    path = tmp_path / "t.safetensors"
    sft.save_file({"w": T.arange(6.0).reshape(2, 3), "b": T.tensor([1, 2])}, str(path))
    back = st.load_file(path)
    assert back["w"].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] and back["b"].tolist() == [1, 2]
    st.save_file({"x": tg.ones(2, dtype=tg.bfloat16)}, path)
    assert sft.load_file(str(path))["x"].dtype == T.bfloat16
