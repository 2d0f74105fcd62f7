"""Compare a function's generated gradients with float64 central differences."""
from __future__ import annotations

from typing import Callable

import numpy as np


class GradcheckError(RuntimeError):
    pass


def gradcheck(fn: Callable, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Check every Jacobian entry of `fn` at `inputs` against central differences.

    Inputs that require grad should be float64, as in PyTorch.

    >>> import transgrad as tg
    >>> x = tg.randn(3, dtype=tg.float64, requires_grad=True)
    >>> tg.autograd.gradcheck(lambda x: (x.sin() * x).sum(), (x,))
    True
    """
    from .._state import no_grad
    from ..engine import grad
    from ..tensor import Tensor, tensor

    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    wrt = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]

    def outputs(args):
        out = fn(*args)
        return out if isinstance(out, (tuple, list)) else (out,)

    outs = outputs(inputs)
    for oi, o in enumerate(outs):
        flat = o.reshape(-1)
        analytic = {i: np.zeros((flat.shape[0], inputs[i].numel())) for i in wrt}
        for j in range(flat.shape[0]):
            seed = np.zeros(flat.shape[0], o.dtype)
            seed[j] = 1
            gs = grad(flat, [inputs[i] for i in wrt], tensor(seed), retain_graph=True, allow_unused=True)
            for i, g in zip(wrt, gs):
                if g is not None:
                    analytic[i][j] = np.asarray(g._data, np.float64).ravel()
        for i in wrt:
            base = np.array(inputs[i]._data, np.float64)
            numeric = np.zeros_like(analytic[i])
            for k in range(base.size):
                vals = []
                for d in (eps, -eps):
                    x = base.copy()
                    x.flat[k] += d
                    args = list(inputs)
                    args[i] = tensor(x.astype(inputs[i].dtype))
                    with no_grad():
                        vals.append(np.asarray(outputs(args)[oi]._data, np.float64).ravel())
                numeric[:, k] = (vals[0] - vals[1]) / (2 * eps)
            if not np.allclose(analytic[i], numeric, atol=atol, rtol=rtol):
                err = np.abs(analytic[i] - numeric).max()
                msg = (f"gradcheck: Jacobian mismatch for output {oi} with respect to input {i} "
                       f"(max abs error {err:.3g})\nanalytical:\n{analytic[i]}\nnumerical:\n{numeric}")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True
