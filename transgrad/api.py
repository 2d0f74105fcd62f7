"""The entry points: `tg.compile`, `tg.grad`, `tg.value_and_grad` (the machinery is in
transgrad/compiled/)."""
from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence, Union

from .compiled import CompiledFunction, GradFunction


def compile(fn: Optional[Callable] = None, *, backend: str = "numpy", cache_size: int = 16,
            device=None, loops: str = "roll", checkpoint: Optional[int] = None) -> CompiledFunction:
    """Compile `fn` per control-flow path into generated Python (NumPy) or XLA (JAX) code.

    The first call with a new signature (shapes, dtypes, requires_grad flags, values of
    non-tensor arguments) traces `fn`; Python decisions on tensor values become guards
    that later calls re-check. Results support `.backward()`. With `backend="jax"` each
    trace is one `jax.jit` program (`device=` places it) whose guards are checked on the
    host after the call. A loop whose iterations repeat the same operations becomes a loop
    of the generated code, one program for every trip count (on JAX, every count below
    the capacity of its buffers, which a retrace doubles); an int argument `n` that only
    bounds a loop, `for t in range(n):`, is then an input rather than part of the
    signature: one program for every `n`. `loops="unroll"` keeps one
    straight-line trace per trip count. `tg.grad(tg.compile(f, loops="unroll"))` takes
    the switch along. With `checkpoint=k` a rolled loop saves only the state of every k-th
    iteration; the backward runs each stretch of k iterations again before going back
    through it (memory for about trips/k + k iterations instead of trips).

    >>> import transgrad as tg
    >>> @tg.compile
    ... def double_until_big(x):
    ...     y = x * 2
    ...     while y.data.norm() < 1000:
    ...         y = y * 2
    ...     return y
    >>> x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = double_until_big(x)
    >>> y.backward(tg.ones(3)); x.grad
    tensor([512., 512., 512.])
    >>> double_until_big.cache_info()
    CacheInfo(hits=0, misses=1, retraces=0, size=1)
    """
    if fn is None:
        return functools.partial(compile, backend=backend, cache_size=cache_size, device=device, loops=loops,
                                 checkpoint=checkpoint)
    if isinstance(fn, CompiledFunction):
        return fn
    return CompiledFunction(fn, backend=backend, cache_size=cache_size, device=device, loops=loops,
                            checkpoint=checkpoint)


def grad(f: Callable, argnums: Union[int, Sequence[int]] = 0, *, backend: Optional[str] = None) -> GradFunction:
    """The gradient of scalar-valued `f` with respect to argument(s) `argnums`, computed by
    one generated program per control-flow path (forward and backward together). An
    argument may be a list, tuple or dict of tensors: its gradient has its structure.

    >>> import transgrad as tg
    >>> df = tg.grad(lambda x: (x * x).sum())
    >>> df(tg.tensor([1.0, 2.0]))
    tensor([2., 4.])
    >>> tg.grad(lambda p: (p[0] * p[1]).sum())([tg.tensor(2.0), tg.tensor(3.0)])
    [tensor(3.), tensor(2.)]
    >>> tg.grad(lambda x: tg.grad(lambda y: (y ** 3).sum())(x).sum())(tg.tensor([2.0]))
    tensor([12.])
    """
    return GradFunction(f, argnums, backend, with_value=False)


def value_and_grad(f: Callable, argnums: Union[int, Sequence[int]] = 0, *,
                   backend: Optional[str] = None) -> GradFunction:
    """`(f(*args), grad(f, argnums)(*args))` from one generated program.

    >>> import transgrad as tg
    >>> tg.value_and_grad(lambda x, w: (x @ w).sum(), argnums=(0, 1))(tg.ones(2), tg.ones(2))
    (tensor(2.), (tensor([1., 1.]), tensor([1., 1.])))
    """
    return GradFunction(f, argnums, backend, with_value=True)
