"""Grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``
(public as ``tracegrad.autograd.grad_mode``, PyTorch's path).

The flag (``_state.STATE.grad_enabled``) is thread-local, as in PyTorch: a ``no_grad`` block
in one thread does not change another thread's recording.
"""
from __future__ import annotations

import functools
import inspect

from ._state import STATE

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "is_inference_mode_enabled"]


def is_grad_enabled() -> bool:
    """True when operations are being recorded for autograd in this thread."""
    return STATE.grad_enabled


def is_inference_mode_enabled() -> bool:
    return STATE.inference


class _DecoratorContextManager:
    """A context manager that also works as a decorator (``@no_grad()`` or ``@no_grad``)."""

    def __call__(self, func):
        if inspect.isclass(func) or not callable(func):
            raise TypeError(f"{type(self).__name__} can decorate functions only, got {func!r}")
        if inspect.isgeneratorfunction(func):
            @functools.wraps(func)
            def gen_wrapper(*args, **kwargs):
                gen = func(*args, **kwargs)
                try:  # each step of the generator runs in the mode; its end ends ours
                    with self.clone():
                        response = gen.send(None)
                    while True:
                        try:
                            request = yield response
                        except GeneratorExit:
                            with self.clone():
                                gen.close()
                            raise
                        except BaseException as exc:
                            with self.clone():
                                response = gen.throw(exc)
                        else:
                            with self.clone():
                                response = gen.send(request)
                except StopIteration as e:
                    return e.value
            return gen_wrapper

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.clone():
                return func(*args, **kwargs)
        return wrapper

    def clone(self):
        return type(self)()


class no_grad(_DecoratorContextManager):
    """Context manager and decorator that turns off gradient recording in this thread.

    >>> x = tensor([1.], requires_grad=True)
    >>> with no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    def __new__(cls, orig_func=None):
        if orig_func is None or cls is not no_grad:
            return super().__new__(cls)
        return cls()(orig_func)  # bare @no_grad

    def __enter__(self):
        self.prev = STATE.grad_enabled
        STATE.grad_enabled = False

    def __exit__(self, *exc):
        STATE.grad_enabled = self.prev


class enable_grad(_DecoratorContextManager):
    """Context manager and decorator that turns gradient recording on inside a ``no_grad``."""

    def __new__(cls, orig_func=None):
        if orig_func is None or cls is not enable_grad:
            return super().__new__(cls)
        return cls()(orig_func)

    def __enter__(self):
        self.prev = STATE.grad_enabled
        STATE.grad_enabled = True

    def __exit__(self, *exc):
        STATE.grad_enabled = self.prev


class set_grad_enabled(_DecoratorContextManager):
    """Turn recording on or off: as a plain call (takes effect at once, like PyTorch), as a
    context manager (restored on exit), or as a decorator."""

    def __init__(self, mode: bool):
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled(): argument 'mode' must be bool, not {type(mode).__name__}")
        self.prev = STATE.grad_enabled
        self.mode = mode
        STATE.grad_enabled = mode

    def __call__(self, func):
        STATE.grad_enabled = self.prev  # used as a decorator: the call above should not stick
        return super().__call__(func)

    def __enter__(self):
        STATE.grad_enabled = self.mode

    def __exit__(self, *exc):
        STATE.grad_enabled = self.prev

    def __repr__(self):  # what a REPL shows after a plain set_grad_enabled(False) call
        return f"tracegrad.autograd.grad_mode.set_grad_enabled(mode={self.mode})"

    def clone(self):
        prev = STATE.grad_enabled
        c = set_grad_enabled(self.mode)
        c.prev = prev
        STATE.grad_enabled = prev
        return c


class inference_mode(_DecoratorContextManager):
    """Like ``no_grad`` (tracegrad has no separate inference tensors; see docs/grad_modes.md)."""

    def __init__(self, mode: bool = True):
        self.mode = mode

    def __new__(cls, mode=True):
        if callable(mode) and cls is inference_mode:
            return cls(True)(mode)
        return super().__new__(cls)

    def __enter__(self):
        self.prev = (STATE.grad_enabled, STATE.inference)
        if self.mode:
            STATE.grad_enabled, STATE.inference = False, True

    def __exit__(self, *exc):
        STATE.grad_enabled, STATE.inference = self.prev

    def clone(self):
        return type(self)(self.mode)
