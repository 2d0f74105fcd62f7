"""`torch.nn.utils`: gradient clipping, in place on the parameters' `.grad`."""
from __future__ import annotations

import math

from .._state import no_grad
from ..tensor import Tensor, creation


def _grads(parameters):
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients so that their joint `norm_type`-norm is at most `max_norm`;
    returns the norm before clipping, as PyTorch's.

    >>> import transgrad as tg
    >>> w = tg.tensor([3.0, 4.0], requires_grad=True)
    >>> (w * w).sum().backward()  # grad [6, 8]: norm 10
    >>> float(tg.nn.utils.clip_grad_norm_([w], 1.0)), w.grad
    (10.0, tensor([0.6000, 0.8000]))
    """
    grads = _grads(parameters)
    if not grads:
        return creation.tensor(0.0)
    with no_grad():
        if norm_type == math.inf:
            total = creation.stack([g.abs().max() for g in grads]).max()
        else:
            total = creation.stack([(g.abs() ** norm_type).sum() for g in grads]).sum() ** (1.0 / norm_type)
        if error_if_nonfinite and not bool(total.isfinite()):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                               "so it cannot be clipped")
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)  # PyTorch's 1e-6, and no scaling up
        for g in grads:
            g.mul_(scale.astype(g.dtype))
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)
