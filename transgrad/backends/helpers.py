"""Functions that generated code calls besides `xp`, written once against a module global
`xp`: each backend binds its own copies to its array namespace (`bind`), and `tg.export`
copies their source into a standalone module that imports only that namespace.
"""
import types

xp = None  # the array namespace: each backend's copies see numpy or jax.numpy here


class GuardFailed(Exception):
    """A decision recorded when the code was traced does not hold for these inputs: the
    guard's index, and the value the generated program computed there (None for a bool)."""

    def __init__(self, index, value=None):
        super().__init__(index, value)
        self.index, self.value = index, value


def guard(value, expected, index):
    v = type(expected)(value.item())  # bool(), int(), float() as the traced run converted it
    if v != expected and not (v != v and expected != expected):  # NaN == NaN for a guard
        raise GuardFailed(index, v)


def softmax(x, axis):
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis):
    s = x - xp.max(x, axis=axis, keepdims=True)
    return s - xp.log(xp.sum(xp.exp(s), axis=axis, keepdims=True))


def along(idx, axis):
    """The full index of `idx`'s entries along `axis` (an open grid in the other dimensions)."""
    return tuple(idx if d == axis else xp.arange(n).reshape([n if e == d else 1 for e in range(idx.ndim)])
                 for d, n in enumerate(idx.shape))


def take_along(a, idx, axis, keepdims):
    out = a[along(idx, axis)]
    return out if keepdims else xp.squeeze(out, axis)


def argsort(a, axis, descending):
    """Indices that sort `a` along `axis` (ties keep their order)."""
    return xp.argsort(-a if descending else a, axis=axis, stable=True)


SHARED = [softmax, log_softmax, along, take_along, argsort]  # rebound per backend; GuardFailed and guard are shared as they are


def bind(functions, namespace):
    """Copies of `functions` whose globals are `namespace` (where `xp` and the other helpers
    are): one source for every backend."""
    for fn in functions:
        namespace[fn.__name__] = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__)
    return namespace
