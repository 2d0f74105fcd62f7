"""Per-thread mode (is grad recording on, which tracer listens, anomaly checks) and the
few facts every layer needs: where the user's code is, whether to print generated code.

`engine` is the autograd engine (transgrad.engine), which sits above the tensors whose
`.backward()` calls it: it registers itself here when it is imported.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading

PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
engine = None


class _Mode(threading.local):
    grad_enabled = True
    tracer = None
    anomaly = False
    host = False  # tracing for JAX on NumPy copies (NOTE [host tracing])


mode = _Mode()


class using(contextlib.ContextDecorator):
    """`with using(grad_enabled=False, ...):` sets fields of `mode` and restores them on exit
    (the one save-and-restore of the package: no_grad, enable_grad, tracing, detect_anomaly)."""

    def __init__(self, **fields):
        self.fields, self.saved = fields, []  # a stack: one decorated function may recurse

    def __enter__(self):
        self.saved.append({k: getattr(mode, k) for k in self.fields})
        for k, v in self.fields.items():
            setattr(mode, k, v)
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.pop().items():
            setattr(mode, k, v)


def no_grad() -> using:
    """Context manager (and decorator) that stops recording operations for autograd.

    >>> import transgrad as tg
    >>> w = tg.ones(2, requires_grad=True)
    >>> with tg.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """
    return using(grad_enabled=False)


def enable_grad() -> using:
    """Context manager (and decorator) that turns recording back on inside `no_grad`."""
    return using(grad_enabled=True)


class set_grad_enabled(using):
    """Turn recording on or off: as a call, and as a context manager restoring it on exit."""

    def __init__(self, enabled: bool):
        super().__init__(grad_enabled=bool(enabled))
        self.prev, mode.grad_enabled = mode.grad_enabled, bool(enabled)

    def __enter__(self):
        if self.prev is None:  # entered again, or the function it decorates is called
            return super().__enter__()
        self.saved.append({"grad_enabled": self.prev})  # `with set_grad_enabled(b):` already set it
        self.prev = None
        return self

    def __call__(self, fn):
        """As a decorator it sets the mode for the function's calls only, as PyTorch's does."""
        if self.prev is not None:
            mode.grad_enabled, self.prev = self.prev, None
        return super().__call__(fn)


def is_grad_enabled() -> bool:
    return mode.grad_enabled


def user_frame(skip=0):
    """The innermost frame outside the transgrad package, or None. The walk starts `skip`
    frames above the caller, frames known to be the package's: each frame a walk passes is
    made into an object, and every op asks (through user_src)."""
    try:
        f = sys._getframe(1 + skip)
    except ValueError:
        return None
    while f is not None and f.f_code.co_filename.startswith(PKG_DIR):
        f = f.f_back
    return f


def user_src():
    """(file, line) of the innermost frame outside the transgrad package, or None."""
    f = user_frame(2)  # this function and its caller are the package's
    return None if f is None else (f.f_code.co_filename, f.f_lineno)


def user_site():
    """(file, line) of the user's current call, and the column of the call on a line that
    makes several tensors (`w, b = tg.randn(3), tg.zeros(3)`): where a tensor is made, which
    names it in generated code (trace/names.py)."""
    f = user_frame(2)  # this function and its caller are the package's
    if f is None:
        return None
    file, line = f.f_code.co_filename, f.f_lineno
    if unpacking(file, line) and hasattr(f.f_code, "co_positions"):  # (Python 3.11 on)
        pos = next(itertools.islice(f.f_code.co_positions(), f.f_lasti // 2, None), None)
        if pos is not None and pos[2] is not None:
            return file, line, pos[2]
    return file, line


def unpacking(file, line):
    """Does that line make several tensors at once? (trace/names.py puts its answer here.)"""
    return False


def show_code(source):
    """TRANSGRAD_DEBUG=1: print generated code as it is generated (0, false, no or off: don't)."""
    if os.environ.get("TRANSGRAD_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off"):
        print(source, file=sys.stderr)


@contextlib.contextmanager
def gc_paused():
    """Code generation allocates many small objects that all survive; with the cyclic
    collector paused it does not rescan every live object (a large program's, too) on
    each generation threshold."""
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
