"""Where a compiled function reads values that are not its arguments.

NOTE [sources]: a trace records tensors the function read from outside (a global `W`, a closure's
weights, `model.layer.weight`) and plain Python values it baked into the code (`lr = 0.1`).
Neither may be frozen into the trace: at every call the tensors are read again and the
values are compared. So each is found by a *path* from the function: a sequence of steps
(`("glob", "W")`, `("cell", 0)`, `("attr", "layer")`, `("item", 2)`) that `resolve` follows
on the function that is being called, which may be another closure of the same code.
"""
from __future__ import annotations

import collections
import functools
import types
import weakref

_PLAIN = (bool, int, float, complex, str, bytes, type(None))
_LIBRARIES = ("builtins", "numpy", "jax", "jaxlib", "torch", "transgrad", "libcst", "functools", "typing")
MAX_OBJECTS = 5000  # objects looked at per search: a trace must not walk a whole program
MAX_DEPTH = 8
MAX_VISITS = 4  # paths kept to one container: two names for one list must both be checked


class Missing(LookupError):
    """A path no longer leads anywhere (a global deleted, an attribute removed)."""


class Stale(Exception):
    """A trace does not apply: a value it baked in, or a tensor it reads, changed (`why`
    tells which, in the user's terms)."""

    def __init__(self, why):
        super().__init__(why)
        self.why = why


def plain(v, depth=0):
    """A value made of numbers, strings and None (in tuples, lists and dicts): what tracing
    bakes into generated code as a constant."""
    if isinstance(v, _PLAIN):
        return True
    if depth > 3:
        return False
    if isinstance(v, (tuple, list)):
        return len(v) <= 64 and all(plain(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return len(v) <= 64 and all(isinstance(k, _PLAIN) and plain(x, depth + 1) for k, x in v.items())
    return False


def _names(code):
    """The global names a code object (and the functions and comprehensions inside it) reads."""
    out = list(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out += _names(c)
    return out


def _function_children(fn):
    code = fn.__code__
    for i, (name, cell) in enumerate(zip(code.co_freevars, fn.__closure__ or ())):
        try:
            yield ("cell", i), cell.cell_contents, name
        except ValueError:  # an empty cell (a name not yet assigned)
            continue
    glb = fn.__globals__
    for name in dict.fromkeys(_names(code)):
        if name in glb:
            yield ("glob", name), glb[name], name
    for i, v in enumerate(fn.__defaults__ or ()):
        yield ("dflt", i), v, code.co_varnames[code.co_argcount - len(fn.__defaults__) + i]
    for k, v in (fn.__kwdefaults__ or {}).items():
        yield ("kwdflt", k), v, k


def _library(obj):
    mod = getattr(type(obj) if not isinstance(obj, type) else obj, "__module__", None) or "builtins"
    if mod.startswith("transgrad.nn") or mod.startswith("transgrad.optim"):
        return False
    return mod.split(".")[0] in _LIBRARIES


def _children(obj):
    """(step, child, label) for what `obj` holds that a function could read through it."""
    if isinstance(obj, types.FunctionType):
        yield from _function_children(obj)
    elif isinstance(obj, types.MethodType):
        yield ("self",), obj.__self__, "self"
        yield ("func",), obj.__func__, obj.__func__.__name__
    elif isinstance(obj, functools.partial):
        yield ("func",), obj.func, "func"
        for i, v in enumerate(obj.args):
            yield ("parg", i), v, f"arg{i}"
        for k, v in obj.keywords.items():
            yield ("pkw", k), v, k
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield ("item", i), v, str(i)
    elif isinstance(obj, dict):
        for k, v in list(obj.items()):
            if isinstance(k, (str, int)):
                yield ("item", k), v, str(k)
    elif hasattr(obj, "__transgrad_fn__"):  # a compiled function: what its Python function reads
        yield ("tgfn",), obj.__transgrad_fn__, "fn"
    elif hasattr(type(obj), "__transgrad_children__"):  # a Module: its attributes as the user names them
        for name, v in obj.__transgrad_children__():
            yield ("get", name), v, name
    elif not isinstance(obj, types.ModuleType) and not _library(obj):
        d = getattr(obj, "__dict__", None)
        if isinstance(d, (dict, types.MappingProxyType)):
            for k, v in list(d.items()):
                if isinstance(k, str) and not k.startswith("__"):
                    yield ("attr", k), v, k


def _step(obj, step):
    kind = step[0]
    try:
        if kind == "cell":
            return obj.__closure__[step[1]].cell_contents
        if kind == "glob":
            return obj.__globals__[step[1]]
        if kind == "item":
            return obj[step[1]]
        if kind == "attr":
            return obj.__dict__[step[1]]
        if kind == "dflt":
            return obj.__defaults__[step[1]]
        if kind == "kwdflt":
            return obj.__kwdefaults__[step[1]]
        if kind == "self":
            return obj.__self__
        if kind == "func":
            return obj.func if isinstance(obj, functools.partial) else obj.__func__
        if kind == "parg":
            return obj.args[step[1]]
        if kind == "pkw":
            return obj.keywords[step[1]]
        if kind == "tgfn":
            return obj.__transgrad_fn__
        if kind == "get":
            return getattr(obj, step[1])
    except (KeyError, IndexError, AttributeError, ValueError, TypeError):
        pass
    raise Missing(step)


def resolve(fn, path):
    """The object at the end of `path`, starting from `fn`; raises Missing."""
    obj = fn
    for step in path:
        obj = _step(obj, step)
    return obj


def describe(path, labels):
    """`W`, `params[0]`, `model.fc.weight`: a path as the user's code would spell it."""
    out = ""
    for step, label in zip(path, labels):
        kind = step[0]
        if kind in ("cell", "glob", "dflt", "kwdflt", "pkw", "parg"):
            out = label
        elif kind == "item":
            out += f"[{step[1]!r}]"
        elif kind in ("attr", "get"):
            out += "." + label
    return out.lstrip(".") or "the function"


def search(fn, tensors, is_tensor):
    """Paths from `fn` to each of `tensors` (by id), and guards on what the function and the
    functions it calls read from their closures, globals and defaults.

    Returns ({id: [(path, text)]}, [(path, text, kind, value)]): a plain value (a number, a
    string, a tuple or list of them) is compared by value at each call (kind "eq"), anything
    else but a tensor by identity ("is"): tracing baked what the function did with it into the
    code. An object that tells its state (`__transgrad_state__`: a Module's structure, its
    train()/eval() mode and plain attributes) is compared by that state ("state"), wherever it
    is found. Objects are visited breadth first, at most MAX_OBJECTS of them; library objects
    (NumPy, JAX, modules) are not entered, and plain attributes of other objects (`self.lr`)
    are not guarded. A container reached by several paths is entered up to MAX_VISITS times,
    so that every name that leads to a tensor is known and checked.
    """
    found = {i: [] for i in tensors}
    guards = []
    if hasattr(type(fn), "__transgrad_state__"):
        guards.append(((), "", "state", _snapshot(fn.__transgrad_state__())))
    visits = collections.Counter()
    queue = collections.deque([(fn, (), ())])
    budget = MAX_OBJECTS
    while queue and budget > 0:
        obj, path, labels = queue.popleft()
        budget -= 1
        scope = isinstance(obj, (types.FunctionType, functools.partial))  # a function's own names
        for step, child, label in _children(obj):
            p, lb = path + (step,), labels + (label,)
            if is_tensor(child):
                if id(child) in found:
                    found[id(child)].append((p, describe(p, lb)))
                continue
            if isinstance(child, types.ModuleType):
                continue
            if scope:
                if plain(child):
                    guards.append((p, describe(p, lb), "eq", _snapshot(child)))
                    continue
                guards.append((p, describe(p, lb), "is", child))
            if len(p) >= MAX_DEPTH or isinstance(child, _PLAIN) or isinstance(child, type) or visits[id(child)] >= MAX_VISITS:
                continue
            if visits[id(child)] == 0 and hasattr(type(child), "__transgrad_state__"):
                guards.append((p, describe(p, lb), "state", _snapshot(child.__transgrad_state__())))
            visits[id(child)] += 1
            queue.append((child, p, lb))
    return found, guards


def _snapshot(v):
    """A copy of a plain value that later mutation of the original cannot change."""
    if isinstance(v, list):
        return [_snapshot(x) for x in v]
    if isinstance(v, dict):
        return {k: _snapshot(x) for k, x in v.items()}
    return v


# ---- what a trace keeps of them -------------------------------------------------------------------
class Capture:
    """A tensor the traced function read from outside its arguments: an input of the trace
    that every call reads again, by the paths that lead to it from the function (or, when
    no path was found, as the same tensor object)."""

    __slots__ = ("var", "paths", "shape", "dtype", "requires_grad", "ref")

    def __init__(self, var, paths, t):
        self.var, self.paths = var, paths
        self.shape, self.dtype, self.requires_grad = t.shape, t.dtype, t._requires_grad
        self.ref = None if paths else weakref.ref(t)

    def get(self, fn, tensor_type):
        """The tensor at its place now; raises Stale if it no longer fits the trace."""
        t = self._find(fn)
        if (not isinstance(t, tensor_type) or t.shape != self.shape or t.dtype != self.dtype
                or t._requires_grad != self.requires_grad):
            raise Stale(self.why(fn, tensor_type))
        return t

    def _find(self, fn):
        if not self.paths:
            return self.ref()
        try:
            t = resolve(fn, self.paths[0][0])
            for path, _ in self.paths[1:]:  # two names for one tensor: both must still name it
                if resolve(fn, path) is not t:
                    return None
        except Missing:
            return None
        return t

    def why(self, fn, tensor_type):
        name = f"`{self.paths[0][1]}`" if self.paths else f"a captured tensor of shape {self.shape}"
        t = self._find(fn)
        if t is None:
            return f"{name} is gone, or its names no longer lead to one tensor"
        if not isinstance(t, tensor_type):
            return f"{name} is no longer a tensor ({type(t).__name__})"
        if t.shape != self.shape or t.dtype != self.dtype:
            return f"{name} changed from {self.dtype}{list(self.shape)} to {t.dtype}{list(t.shape)}"
        return f"{name} changed requires_grad to {t._requires_grad}"


_GONE = object()


def same(a, b):
    """Equal as the trace used it: plain values by type and value (NaN equal to NaN),
    containers elementwise, any other object by identity."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if not isinstance(a, _PLAIN):
        return a is b
    return a == b or (a != a and b != b)


def _holds(v, kind, seen):
    if kind == "is":
        return v is seen
    if kind == "state":
        return v is not _GONE and hasattr(type(v), "__transgrad_state__") and same(v.__transgrad_state__(), seen)
    return same(v, seen)


def _get(fn, path):
    try:
        return resolve(fn, path)
    except Missing:
        return _GONE


def changed(fn, guards):
    """What no longer holds of the guards (path, text, kind, value) of `search`, in words."""
    out, told = [], []
    for path, text, kind, seen in guards:
        v = _get(fn, path)
        if _holds(v, kind, seen):
            continue
        if v is _GONE:
            out.append(f"`{text}` is gone")
        elif kind == "state" and hasattr(type(v), "__transgrad_state__"):
            now = dict(v.__transgrad_state__())
            if now.get("class") is not dict(seen).get("class", now.get("class")):
                out.append(f"`{text or type(v).__name__}` is a {type(v).__name__} now (a "
                           f"{dict(seen)['class'].__name__} when traced)")
                continue
            diff = ", ".join(f"{k} {old!r} -> {now.get(k, '(none)')!r}" for k, old in seen
                             if not same(now.get(k, _GONE), old))
            if not any(path[:len(p)] == p and diff == d for p, d in told):  # `model.eval()` changes every submodule
                told.append((path, diff))
                out.append(f"`{text or type(v).__name__}` changed its {diff}")
        elif kind == "is":
            out.append(f"`{text}` is another object than when it was traced")
        else:
            out.append(f"`{text}` changed since it was traced (a Python value the trace baked in; pass values that "
                       "change as arguments)")
    return out


def holds(fn, guards):
    for path, _, kind, seen in guards:
        if not _holds(_get(fn, path), kind, seen):
            return False
    return True
