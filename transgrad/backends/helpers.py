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


def unfold(a, kernel, stride, padding, value):
    """(N, C, H, W) -> (N, C*kh*kw, L): the patches a kernel of `kernel` sees, as PyTorch's
    F.unfold lays them out (`value` pads: 0 for a convolution, -inf for max pooling)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = a.shape
    a = xp.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    cols = [a[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] for i in range(kh) for j in range(kw)]
    return xp.stack(cols, axis=2).reshape(n, c * kh * kw, oh * ow)


def fold_at(size, kernel, stride, padding):
    """The output grid of `fold`: (padded shape, oh, ow, [(k, rows, cols) per kernel place])."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    h, w = size[2], size[3]
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    places = [(i * kw + j, slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))
              for i in range(kh) for j in range(kw)]
    return (size[0], size[1], h + 2 * ph, w + 2 * pw), oh, ow, places


SHARED = [softmax, log_softmax, along, take_along, argsort, unfold, fold_at]  # rebound per backend; GuardFailed and guard are shared as they are


def bind(functions, namespace):
    """Copies of `functions` whose globals are `namespace` (where `xp` and the other helpers
    are): one source for every backend."""
    for fn in functions:
        namespace[fn.__name__] = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__)
    return namespace
