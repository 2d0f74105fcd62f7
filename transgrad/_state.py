"""Per-thread mode: is grad recording on, and which tracer (if any) is listening."""
import contextlib
import os
import sys
import threading

PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class _Mode(threading.local):
    grad_enabled = True
    tracer = None
    anomaly = False


mode = _Mode()


def user_src():
    """(file, line) of the innermost frame outside the transgrad package, or None."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename.startswith(PKG_DIR):
        f = f.f_back
    return None if f is None else (f.f_code.co_filename, f.f_lineno)


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        self.prev, mode.grad_enabled = mode.grad_enabled, self.enabled

    def __exit__(self, *exc):
        mode.grad_enabled = self.prev


def no_grad():
    """Context manager (and decorator) that stops recording operations for autograd.

    >>> import transgrad as tg
    >>> w = tg.ones(2, requires_grad=True)
    >>> with tg.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """
    return _GradMode(False)


def enable_grad():
    """Context manager that turns recording back on inside `no_grad`."""
    return _GradMode(True)


def is_grad_enabled():
    return mode.grad_enabled


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
