"""`transgrad.autograd`: the tutorial's spelling and the functional interface."""
from .._state import enable_grad, no_grad
from ..autodiff import backward, grad
from .function import Function
from .gradcheck import gradcheck


class detect_anomaly:
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
        self.check = check_nan

    def __enter__(self):
        from .._state import mode

        self.prev, mode.anomaly = mode.anomaly, self.check

    def __exit__(self, *exc):
        from .._state import mode

        mode.anomaly = self.prev


def set_detect_anomaly(mode_on):
    from .._state import mode

    mode.anomaly = bool(mode_on)


def Variable(tensor, requires_grad=False):
    """The tutorial's `Variable(tensor, requires_grad=True)`: a leaf tensor sharing
    `tensor`'s data.

    >>> import transgrad as tg
    >>> from transgrad.autograd import Variable
    >>> Variable(tg.ones(2, 2), requires_grad=True)
    tensor([[1., 1.],
            [1., 1.]], requires_grad=True)
    """
    from ..tensor import Tensor, _leaf, _to_array

    data = tensor._data if isinstance(tensor, Tensor) else _to_array(tensor, where="Variable()")
    return _leaf(data, requires_grad)


__all__ = ["Variable", "detect_anomaly", "set_detect_anomaly", "Function", "backward", "grad", "gradcheck", "no_grad", "enable_grad"]
