"""``tracegrad.autograd.profiler``: PyTorch's path for the autograd profiler.

The profiler records eager ops, backward nodes, compiled regions and user ranges, so it is
not autograd's; it lives in the ``tracegrad.profiler`` package (recording, events and tables,
the ``profile`` API). This module is the name ported code imports::

    with tracegrad.autograd.profiler.profile(record_shapes=True) as prof:
        ...
    print(prof.key_averages().table(sort_by="cpu_time_total"))
"""
from ..profiler import (EventList, FunctionEvent, FunctionEventAvg, Interval, profile,
                        record_function, region)

__all__ = ["profile", "record_function", "region", "EventList", "FunctionEvent",
           "FunctionEventAvg", "Interval"]
