"""`transgrad.autograd`: the tutorial's spelling and the functional interface."""
from .._state import enable_grad, no_grad
from ..autodiff import backward, grad
from .function import Function
from .gradcheck import gradcheck


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


__all__ = ["Variable", "Function", "backward", "grad", "gradcheck", "no_grad", "enable_grad"]
