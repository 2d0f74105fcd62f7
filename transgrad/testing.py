"""Gradient checks by random projection, shipped for users and used by the test suite.

`check_grads(fn, args)` compares <v, J u> from transgrad's generated backward with a
float64 central difference of <v, fn(x + t u)> along a random direction u; `order=2`
repeats the check on the gradient itself (built with `create_graph=True`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _vjp_check(fn, args, rng, eps, rtol, atol):
    import transgrad as tg

    xs = [tg.tensor(a, requires_grad=True) for a in args]
    out = fn(*xs)
    v = rng.standard_normal(out.shape)
    us = [rng.standard_normal(np.shape(a)) for a in args]
    if out.requires_grad:
        grads = tg.autograd.grad(out, xs, grad_outputs=tg.tensor(v), allow_unused=True)
        analytic = sum(float((g.numpy() * u).sum()) for g, u in zip(grads, us) if g is not None)
    else:  # out does not depend on xs (e.g. the gradient of a linear function)
        analytic = 0.0

    def f(t):  # inputs require grad: for order 2, fn itself takes a gradient
        y = fn(*[tg.tensor(np.asarray(a, np.float64) + t * u, requires_grad=True) for a, u in zip(args, us)])
        return float((np.asarray(y.detach().numpy(), np.float64) * v).sum())

    numeric = (f(eps) - f(-eps)) / (2 * eps)
    if not np.isclose(analytic, numeric, rtol=rtol, atol=atol):
        raise AssertionError(f"VJP check failed: analytic <v, J u> = {analytic!r}, central difference = {numeric!r}")


def check_grads(fn: Callable, args, order: int = 2, eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-6,
                seed: int = 0) -> None:
    """Raise AssertionError unless `fn`'s gradients (up to `order`) match float64
    central differences at `args` (a list of float64 arrays).

    >>> import numpy as np
    >>> check_grads(lambda x: (x.sin() * x).sum(), [np.array([0.5, 1.5])])
    """
    import transgrad as tg

    rng = np.random.default_rng(seed)
    args = [np.asarray(a, np.float64) for a in args]
    _vjp_check(fn, args, rng, eps, rtol, atol)
    if order >= 2:
        probe = fn(*[tg.tensor(a) for a in args])
        v = tg.tensor(rng.standard_normal(probe.shape))
        ws = [tg.tensor(rng.standard_normal(a.shape)) for a in args]

        def grad_dot(*xs):
            gs = tg.autograd.grad(fn(*xs), xs, grad_outputs=v, create_graph=True, allow_unused=True)
            terms = [(g * w).sum() for g, w in zip(gs, ws) if g is not None]
            total = terms[0] if terms else tg.zeros((), dtype=tg.float64)
            for t in terms[1:]:
                total = total + t
            return total

        check_grads(grad_dot, args, order - 1, eps, rtol * 10, atol * 10, seed + 1)
