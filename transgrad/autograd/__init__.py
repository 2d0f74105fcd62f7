"""`transgrad.autograd`: the tutorial's spelling and the functional interface."""
from .._state import enable_grad, mode, no_grad, set_grad_enabled, using
from ..engine import backward, grad
from ..tensor import Tensor, leaf_tensor, to_array
from . import graph
from .function import Function
from .gradcheck import gradcheck


class detect_anomaly(using):
    """Context manager: generated backward code checks every gradient it computes for NaN
    or infinity and raises, naming the operation and the user's forward source line.

    >>> import transgrad as tg
    >>> x = tg.tensor([0.0], requires_grad=True)
    >>> with tg.autograd.detect_anomaly():
    ...     tg.sqrt(x).sum().backward()
    Traceback (most recent call last):
    RuntimeError: Function 'SqrtBackward0' returned nan or inf values in its 0th output ...
    """

    def __init__(self, check_nan=True):
        super().__init__(anomaly=bool(check_nan))


def set_detect_anomaly(mode_on: bool) -> None:
    mode.anomaly = bool(mode_on)


def Variable(tensor, requires_grad: bool = False) -> Tensor:
    """The tutorial's `Variable(tensor, requires_grad=True)`: a leaf tensor sharing
    `tensor`'s data.

    >>> import transgrad as tg
    >>> from transgrad.autograd import Variable
    >>> Variable(tg.ones(2, 2), requires_grad=True)
    tensor([[1., 1.],
            [1., 1.]], requires_grad=True)
    """
    data = tensor._data if isinstance(tensor, Tensor) else to_array(tensor, where="Variable()")
    return leaf_tensor(data, requires_grad)


__all__ = ["Variable", "graph", "detect_anomaly", "set_detect_anomaly", "Function", "backward", "grad", "gradcheck", "no_grad",
           "enable_grad", "set_grad_enabled"]
