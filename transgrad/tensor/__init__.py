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
from .creation import (
    DoubleTensor, FloatTensor, LongTensor, arange, cat, eye, from_numpy, full, full_like, manual_seed, maximum, minimum,
    ones, ones_like, rand, randn, stack, tensor, where, zeros, zeros_like,
)
from .dispatch import alias, apply, new
from .dispatch import leaf as leaf_tensor
from .dtypes import (
    OpError, bool_, default_dtype, float16, float32, float64, int8, int16, int32, int64, is_jax_array, to_array, uint8,
)
from .reduce import MaxMin

__all__ = [
    "Tensor", "apply", "new", "alias", "leaf_tensor", "OpError", "MaxMin", "is_jax_array", "to_array", "default_dtype", "tensor",
    "from_numpy", "zeros", "ones", "full", "eye", "arange", "zeros_like", "ones_like", "full_like", "manual_seed",
    "randn", "rand", "FloatTensor", "DoubleTensor", "LongTensor", "where", "maximum", "minimum", "cat", "stack",
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_",
]
