"""``tracegrad.save`` / ``tracegrad.load`` in PyTorch's file format.

A file is PyTorch's zip archive (what ``torch.save`` writes since PyTorch 1.6)::

    <name>/data.pkl             the object, pickled (protocol 2); each tensor is
                                torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
                                requires_grad, OrderedDict()), its storage a persistent id
                                ('storage', torch.FloatStorage, key, location, numel)
    <name>/data/<key>           each storage's raw bytes (little-endian, 64-byte aligned)
    <name>/byteorder            "little"
    <name>/version              "3"
    <name>/.format_version, <name>/.storage_alignment, <name>/.data/serialization_id

so a checkpoint written by ``torch.save`` loads here **without PyTorch installed**, and a file
written here loads with ``torch.load`` (``weights_only=True`` included).

``load`` defaults to ``weights_only=True``, as PyTorch >= 2.6: the unpickler resolves only an
allow-list of globals (containers, PyTorch's tensor rebuild functions, dtypes, devices, sizes,
and whatever ``add_safe_globals`` adds), so loading never runs code from the file; a file
that needs another global raises PyTorch's ``UnpicklingError`` naming it.

Storage sharing: tensors that share a storage box in tracegrad (``t.detach()``,
``Parameter(t)``, a state dict's entries and the module's parameters, tied weights) are written
as one storage and load back sharing one. tracegrad has no strided views, so a tensor
that is a *part* of a PyTorch storage (a view saved in PyTorch) loads as its own contiguous
copy, and each tensor tracegrad writes is a contiguous storage of its own shape.
"""
from __future__ import annotations

import _codecs
import _compat_pickle
import collections
import contextlib
import io
import os
import pickle
import sys
import zipfile

import jax
import numpy as np

from . import _dtype as D
from ._device import CPU, _gpus, as_device, device as _device_cls
from ._tensor import Size, Tensor
from .nn.parameter import Parameter

__all__ = ["save", "load", "add_safe_globals", "get_safe_globals", "clear_safe_globals",
           "safe_globals"]

# PyTorch's legacy storage classes by dtype: the second field of a storage's persistent id
_STORAGE_NAMES = {D.float32: "FloatStorage", D.float64: "DoubleStorage", D.float16: "HalfStorage",
                  D.bfloat16: "BFloat16Storage", D.int64: "LongStorage", D.int32: "IntStorage",
                  D.int16: "ShortStorage", D.int8: "CharStorage", D.uint8: "ByteStorage",
                  D.bool: "BoolStorage"}
_STORAGE_DTYPES = {name: dt for dt, name in _STORAGE_NAMES.items()}

_UNSAFE_MESSAGE = (
    "In PyTorch 2.6, we changed the default value of the `weights_only` argument in `torch.load` "
    "from `False` to `True`. Re-running `torch.load` with `weights_only` set to `False` will "
    "likely succeed, but it can result in arbitrary code execution. Do it only if you got the "
    "file from a trusted source.")
_DOCS_MESSAGE = ("\n\nCheck the documentation of torch.load to learn more about types accepted "
                 "by default with weights_only https://pytorch.org/docs/stable/generated/"
                 "torch.load.html.")


class _Global:
    """A module-level name in the pickle (``torch._utils._rebuild_tensor_v2``), written as a
    GLOBAL opcode without importing the module (PyTorch need not be installed)."""

    __slots__ = ("module", "name")

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce wants a callable; never called here
        raise TypeError(f"{self.module}.{self.name} is a name written into a pickle")


_REBUILD_TENSOR = _Global("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAMETER = _Global("torch._utils", "_rebuild_parameter")
_TORCH_DEVICE = _Global("torch", "device")
_TORCH_SIZE = _Global("torch", "Size")
_STORAGE_GLOBALS = {dt: _Global("torch", name) for dt, name in _STORAGE_NAMES.items()}


class _StorageRef:
    __slots__ = ("key", "dtype", "location", "numel")

    def __init__(self, key, dtype, location, numel):
        self.key, self.dtype, self.location, self.numel = key, dtype, location, numel


def _location(dev) -> str:
    return "cpu" if dev.type == "cpu" else f"cuda:{dev.index or 0}"


class _TorchPickler(pickle._Pickler):  # the Python pickler: it lets GLOBALs be written by name
    def __init__(self, file, protocol):
        super().__init__(file, protocol)
        self.storages = {}  # id(_Storage) -> (_StorageRef, host array)
        self._keep = []     # keeps the boxes alive so their ids stay unique while pickling

    def save(self, obj, save_persistent_id=True):
        g = obj if type(obj) is _Global else (
            _Global("torch", obj.name) if type(obj) is D.dtype else None)
        if g is None:
            return super().save(obj, save_persistent_id)
        x = self.memo.get(id(obj))
        if x is not None:
            self.write(self.get(x[0]))
            return
        self.write(pickle.GLOBAL + f"{g.module}\n{g.name}\n".encode("utf-8"))
        self.memoize(obj)

    def persistent_id(self, obj):
        if type(obj) is _StorageRef:
            return ("storage", _STORAGE_GLOBALS[obj.dtype], obj.key, obj.location, obj.numel)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            rebuilt = (_REBUILD_TENSOR, (self._storage_of(obj), 0, tuple(obj.shape),
                                         _contiguous_strides(obj.shape), obj.requires_grad,
                                         collections.OrderedDict()))
            if isinstance(obj, Parameter):
                return (_REBUILD_PARAMETER, (_Rebuilt(rebuilt), obj.requires_grad,
                                             collections.OrderedDict()))
            return rebuilt
        if type(obj) is _Rebuilt:
            return obj.reduced
        if isinstance(obj, _device_cls):
            return (_TORCH_DEVICE, (str(obj),))
        if type(obj) is Size:
            return (_TORCH_SIZE, (tuple(obj),))
        return NotImplemented

    def _storage_of(self, t):
        box = t._data
        entry = self.storages.get(id(box))
        if entry is None:
            host = np.ascontiguousarray(t.detach().numpy(force=True))
            ref = _StorageRef(str(len(self.storages)), t.dtype, _location(t.device), host.size)
            entry = self.storages[id(box)] = (ref, host)
            self._keep.append(box)
        return entry[0]


class _Rebuilt:
    """The plain-tensor part of a Parameter's reduction (pickled as the tensor itself)."""
    __slots__ = ("reduced",)

    def __init__(self, reduced):
        self.reduced = reduced


def _contiguous_strides(shape):
    strides, acc = [], 1
    for s in reversed(tuple(shape)):
        strides.append(acc)
        acc *= max(s, 1)
    return tuple(reversed(strides))


_ALIGN = 64


def _aligned_extra(offset, name):
    """A zip extra field that puts the record's data at a multiple of 64 bytes (as PyTorch's
    writer does; readers may then map storages in place)."""
    pad = -(offset + 30 + len(name.encode("utf-8"))) % _ALIGN
    if pad < 4:
        pad += _ALIGN
    return b"FB" + (pad - 4).to_bytes(2, "little") + b"Z" * (pad - 4)


def save(obj, f, pickle_module=None, pickle_protocol=2, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False):
    """Save ``obj`` (tensors, state dicts, nested containers, ...) to ``f`` (a path or a
    writable binary file) in PyTorch's zip format, readable by ``torch.load``.

        >>> import io, tracegrad as torch
        >>> buf = io.BytesIO()
        >>> torch.save({"w": torch.arange(3.0)}, buf)
        >>> _ = buf.seek(0)
        >>> torch.load(buf)
        {'w': tensor([0., 1., 2.])}
    """
    if pickle_module is not None and pickle_module is not pickle:
        raise ValueError("tracegrad.save writes with the standard pickle module only")
    if not _use_new_zipfile_serialization:
        raise ValueError("tracegrad.save writes PyTorch's zip format only "
                         "(_use_new_zipfile_serialization=False is not supported)")
    data = io.BytesIO()
    pickler = _TorchPickler(data, pickle_protocol)
    pickler.dump(obj)
    if isinstance(f, (str, os.PathLike)):
        name = os.path.splitext(os.path.basename(os.fspath(f)))[0] or "archive"
        with open(f, "wb") as fh:
            _write_zip(fh, name, data.getvalue(), pickler.storages)
    else:
        _write_zip(f, "archive", data.getvalue(), pickler.storages)


def _write_zip(fh, name, pkl, storages):
    records = [("data.pkl", pkl), (".format_version", b"1"), (".storage_alignment", b"64")]
    records.append(("byteorder", sys.byteorder.encode()))
    records += [(f"data/{ref.key}", host.tobytes()) for ref, host in storages.values()]
    records += [("version", b"3\n"),
                (".data/serialization_id", str(int.from_bytes(os.urandom(16), "big")).zfill(40)
                 .encode()[:40])]
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as z:
        for rec, payload in records:
            info = zipfile.ZipInfo(f"{name}/{rec}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.extra = _aligned_extra(z.start_dir, info.filename)
            z.writestr(info, payload)


# ------------------------------------------------------------------------------ loading
_user_safe_globals: dict[str, object] = {}


def add_safe_globals(safe_globals):
    """Allow these globals (classes or functions, or ``(obj, "module.name")`` pairs) in
    ``load(..., weights_only=True)``. Only for files you trust to use them as intended."""
    for g in safe_globals:
        if isinstance(g, tuple):
            obj, path = g
        else:
            obj, path = g, f"{g.__module__}.{g.__qualname__}"
        _user_safe_globals[path] = obj


def get_safe_globals():
    return list(_user_safe_globals.values())


def clear_safe_globals():
    _user_safe_globals.clear()


@contextlib.contextmanager
def safe_globals(safe_globals):
    """``with safe_globals([Foo]): load(...)``: ``add_safe_globals`` for the block only."""
    before = dict(_user_safe_globals)
    add_safe_globals(safe_globals)
    try:
        yield
    finally:
        _user_safe_globals.clear()
        _user_safe_globals.update(before)


class _LoadedStorage:
    """A storage read from the file: a flat host array, and where it lives."""
    __slots__ = ("array", "location", "box")

    def __init__(self, array, location):
        self.array, self.location, self.box = array, location, None


class _StorageType:
    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype


def _identity(x):
    return x


def _layout(name):
    if name != "torch.strided":
        raise RuntimeError(f"tracegrad.load: tensors of layout {name} are not supported")
    return name


class _Loader:
    def __init__(self, zf, prefix, map_location):
        self.zf, self.prefix, self.map_location = zf, prefix, map_location
        order = zf.read(prefix + "byteorder").decode() if prefix + "byteorder" in \
            zf.NameToInfo else "little"
        self.swap = order != sys.byteorder
        self.storages = {}

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError(f"tracegrad.load: unknown persistent id {pid!r}")
        _, storage_type, key, location, numel = pid
        if key not in self.storages:
            dt = storage_type.dtype
            raw = self.zf.read(f"{self.prefix}data/{key}")
            arr = np.frombuffer(raw, dtype=dt.np)[:numel]
            if self.swap:
                arr = arr.byteswap()
            self.storages[key] = _LoadedStorage(arr, self._device(location))
        return self.storages[key]

    def _device(self, location):
        ml = self.map_location
        if isinstance(ml, dict):
            location = ml.get(location, location)
        elif callable(ml):
            return None  # decided per storage in rebuild (the callable sees the storage)
        elif ml is not None:
            location = ml
        dev = as_device(location)
        if dev.type == "cuda" and not _gpus():
            raise RuntimeError(
                "Attempting to deserialize object on a CUDA device but torch.cuda.is_available() "
                "is False. If you are running on a CPU-only machine, please use torch.load with "
                "map_location=torch.device('cpu') to map your storages to the CPU.")
        return dev

    def rebuild_tensor(self, storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
        dev = storage.location
        if dev is None:
            out = self.map_location(storage, "cpu")
            if out is not storage and out is not None:
                raise TypeError("tracegrad.load: a map_location callable must return the "
                                "storage it is given (or None)")
            dev = storage.location = CPU
        arr = storage.array
        size, stride = tuple(size), tuple(stride)
        whole = storage_offset == 0 and int(np.prod(size)) == arr.size and \
            stride == _contiguous_strides(size)
        if whole and storage.box is not None and storage.box.value.shape == size:
            t = Tensor._make(None, dev)
            t._data = storage.box  # the same storage as an earlier tensor, as in PyTorch
        else:
            if arr.size == 0 or int(np.prod(size)) == 0:
                view = np.zeros(size, dtype=arr.dtype)
            else:
                item = arr.itemsize
                view = np.lib.stride_tricks.as_strided(
                    arr[storage_offset:], shape=size, strides=tuple(s * item for s in stride))
            t = Tensor._make(jax.device_put(np.array(view, copy=True), dev.jax_device()), dev)
            if whole and storage.box is None:
                storage.box = t._data
        if requires_grad:
            t.requires_grad_(True)
        return t


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    return Parameter(data, requires_grad)


def _rebuild_from_type_v2(func, new_type, args, state):
    ret = func(*args)
    if new_type is not Tensor and new_type is not type(ret):
        raise pickle.UnpicklingError(f"tracegrad.load: tensor subclass {new_type} is not "
                                     "supported")
    if state:
        ret.__dict__.update(state if isinstance(state, dict) else state[0] or {})
    return ret


def _torch_names(loader):
    """What PyTorch's names resolve to here (the weights_only allow-list, and the names a
    full load needs that refer to PyTorch)."""
    names = {
        "collections.OrderedDict": collections.OrderedDict,
        "collections.Counter": collections.Counter,
        "torch._utils._rebuild_tensor_v2": loader.rebuild_tensor,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
        "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
        "torch.nn.parameter.Parameter": Parameter,
        "torch.Tensor": Tensor,
        "torch.Size": Size,
        "torch.device": _device_cls,
        "torch.serialization._get_layout": _layout,
        "_codecs.encode": _codecs.encode,  # bytes, in protocol 2
        "builtins.bytearray": bytearray,
        "builtins.set": set,
        "builtins.complex": complex,
    }
    for dt in D.ALL:
        names[f"torch.{dt.name}"] = dt
    for storage_name, dt in _STORAGE_DTYPES.items():
        names[f"torch.{storage_name}"] = _StorageType(dt)
    return names


def _unsupported_global(full_path):
    if full_path.startswith("builtins"):
        rest = full_path[len("builtins"):]
        full_path = rest[1:] if rest.startswith(".") else "builtins" + rest
    message = (f"Unsupported global: GLOBAL {full_path} was not an allowed global by default. "
               f"Please use `torch.serialization.add_safe_globals([{full_path}])` or the "
               f"`torch.serialization.safe_globals([{full_path}])` context manager to allowlist "
               "this global if you trust this class/function.")
    return pickle.UnpicklingError(
        "Weights only load failed. This file can still be loaded, to do so you have two options, "
        "\033[1mdo those steps only if you trust the source of the checkpoint\033[0m. "
        f"\n\t(1) {_UNSAFE_MESSAGE}\n\t(2) Alternatively, to load with `weights_only=True` please "
        "check the recommended steps in the following error message.\n\tWeightsUnpickler error: "
        + message + _DOCS_MESSAGE)


def _unpickler(data, loader, weights_only):
    names = _torch_names(loader)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            # protocol 2 writes Python 2 names (__builtin__.set): map them back, as pickle does
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
            full = f"{module}.{name}"
            if full in names:
                return names[full]
            if weights_only:
                if full in _user_safe_globals:
                    return _user_safe_globals[full]
                raise _unsupported_global(full)
            return super().find_class(module, name)

        def persistent_load(self, pid):
            return loader.persistent_load(pid)

    return Unpickler(data)


def load(f, map_location=None, pickle_module=None, *, weights_only=True, mmap=None,
         **pickle_load_args):
    """Load an object saved by ``tracegrad.save`` or ``torch.save`` (PyTorch's zip format).

    ``map_location``: ``None`` (each tensor where it was saved), a device or string
    (``"cpu"``), a dict from saved locations to locations (``{"cuda:0": "cpu"}``), or
    ``lambda storage, loc: storage`` (to the CPU). ``weights_only=True`` (the default) allows
    only tensors, containers, numbers, strings, dtypes, devices and ``add_safe_globals``'s
    names; ``weights_only=False`` runs the file's pickle in full (only for files you trust).
    ``mmap`` is accepted and ignored (storages are read into memory).
    """
    if pickle_module is not None and pickle_module is not pickle:
        raise ValueError("tracegrad.load reads with the standard pickle module only")
    if weights_only is None:
        weights_only = True
    opened = None
    if isinstance(f, (str, os.PathLike)):
        f = opened = open(f, "rb")
    try:
        if not zipfile.is_zipfile(f):
            raise RuntimeError(
                "tracegrad.load reads PyTorch's zip checkpoint format (torch.save since PyTorch "
                "1.6); this file is not one (a legacy torch.save file: load it in PyTorch and "
                "save it again)")
        f.seek(0)
        with zipfile.ZipFile(f) as zf:
            pkl = [n for n in zf.namelist() if n.endswith("data.pkl")
                   and n.count("/") == 1]
            if not pkl:
                raise RuntimeError("PytorchStreamReader failed locating file data.pkl: file not "
                                   "found")
            prefix = pkl[0][: -len("data.pkl")]
            loader = _Loader(zf, prefix, map_location)
            up = _unpickler(io.BytesIO(zf.read(pkl[0])), loader, weights_only)
            try:
                return up.load()
            except pickle.UnpicklingError:
                raise
            except (AttributeError, TypeError, ValueError, IndexError, KeyError) as e:
                if not weights_only:
                    raise
                raise pickle.UnpicklingError(
                    f"Weights only load failed. {_UNSAFE_MESSAGE}\nPlease file an issue with the "
                    "following so that we can make `weights_only=True` compatible with your use "
                    f"case: WeightsUnpickler error: \n\n{e}" + _DOCS_MESSAGE) from None
    finally:
        if opened is not None:
            opened.close()
