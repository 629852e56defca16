"""tracegrad's IR: a ``Graph`` of ``Node``s over SSA ``Value``s (see docs/ir.md)."""
from .graph import Graph, Node, NodeKind, Value
from .passes import cse, dce

__all__ = ["Graph", "Node", "NodeKind", "Value", "dce", "cse"]
