"""Hashable index specs: `x[1:3, None, idx]` as a tuple that codegen can print.

Integer arrays and masks become inputs of the getitem primitive (their values may change
between calls that share generated code), referenced from the spec as `Arr(k)`.
"""
from typing import NamedTuple


class Sl(NamedTuple):
    start: object
    stop: object
    step: object


class Arr(NamedTuple):
    k: int


def materialize(spec, arrays):
    return tuple(
        slice(*i) if type(i) is Sl else arrays[i.k] if type(i) is Arr else i for i in spec
    )


def has_arrays(spec):
    return any(type(i) is Arr for i in spec)
