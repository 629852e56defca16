"""tracegrad's compiler: tracing to IR, backward by source transformation, codegen, jax.jit."""
from .backward import CompiledFunctionBackward
from .call import CompiledFunction, compile
from .tracer import GraphBreak
from . import explain as _explain_module  # loaded first, so `explain` below stays the function

__all__ = ["compile", "CompiledFunction", "CompiledFunctionBackward", "GraphBreak", "explain"]


def explain(fn, *args, **kwargs):
    """Trace ``fn`` on ``args`` without running it and say what was traced and why a call
    would (re)compile. ``fn`` may be a compiled function or a plain one."""
    return _explain_module.explain(fn, *args, **kwargs)
