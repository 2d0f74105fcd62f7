"""The tensor front end (layer 4 of the house): eager, define-by-run, PyTorch semantics.

    dtypes.py    data types and arrays
    records.py   what autograd records: nodes, version counters, hooks
    dispatch.py  apply(row, ...): the one way an operation runs; views and aliases
    core.py      the Tensor class, its methods gathered from
    arith.py reduce.py shape.py indexing.py inplace.py
    creation.py  tensor(), zeros(), randn(), cat(), ...
    printing.py  repr
"""
from .core import Tensor
from .creation import *  # noqa: F403  (tensor(), zeros(), randn(), cat(), ...: creation.__all__)
from .creation import __all__ as _creation
from .dispatch import alias, apply, new
from .dispatch import leaf as leaf_tensor
from .dtypes import (
    OpError, bool_, default_dtype, device, float16, float32, float64, int8, int16, int32, int64, is_jax_array, to_array,
    uint8,
)
from .reduce import MaxMin

__all__ = [
    "Tensor", "apply", "new", "alias", "leaf_tensor", "OpError", "MaxMin", "is_jax_array", "to_array", "default_dtype",
    "device", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_",
] + _creation
