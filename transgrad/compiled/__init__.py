"""Compiled functions (layer 7, with api.py and export.py): guarded ahead-of-time traces.

    arguments.py  arguments and results: dynamic leaves, signature, structure
    sources.py    what a function reads besides its arguments (NOTE [sources])
    program.py    one traced path (Trace) and the programs generated from it
    function.py   CompiledFunction: calls, the cache, retraces and why
    gradient.py   GradFunction: tg.grad / tg.value_and_grad
"""
from .function import CacheInfo, CompiledFunction
from .gradient import GradFunction

__all__ = ["CacheInfo", "CompiledFunction", "GradFunction"]
