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
    """Integer index array: input k of the getitem."""

    k: int


class Mask(NamedTuple):
    """Boolean mask: input k, with `count` True values. The count fixes the result's shape,
    so a trace guards it, and XLA (which needs static shapes) is told it."""

    k: int
    count: int


def materialize(spec, arrays):
    return tuple(
        slice(*i) if type(i) is Sl else arrays[i.k] if type(i) in (Arr, Mask) else i for i in spec
    )


def mask_counts(spec):
    return tuple(i.count for i in spec if type(i) is Mask)
