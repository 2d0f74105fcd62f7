"""The tracer (layer 5): records what a run executes as IR, with the user's source lines.

    tracer.py   Tracer (a backward's rules), ForwardTracer (a compiled function), guards
    outside.py  tensors from outside a compiled function: reads and effects (NOTE [effects])
    names.py    values named after the user's variables
"""
from .names import assigned_name, leaf_name, name_from_source
from .tracer import MAX_TRACE_LENGTH, ForwardTracer, Guard, Tracer, TraceError, tracing

__all__ = ["ForwardTracer", "Guard", "MAX_TRACE_LENGTH", "TraceError", "Tracer", "assigned_name", "leaf_name",
           "name_from_source", "tracing"]
