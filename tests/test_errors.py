"""Bad input: each error names the operation, shapes or dtypes, and changes no state."""
import numpy as np
import pytest

import transgrad as tg


def test_broadcast_mismatch_names_op_and_both_shapes():
    with pytest.raises(tg.OpError, match=r"add.*float32\[2, 3\].*float32\[4\]"):
        tg.ones(2, 3) + tg.ones(4)
    with pytest.raises(ValueError):  # OpError is also a ValueError (and a RuntimeError)
        tg.ones(2, 3) * tg.ones(4)


def test_matmul_mismatch_names_shapes():
    with pytest.raises(tg.OpError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        tg.ones(2, 3) @ tg.ones(4, 5)


def test_reshape_of_wrong_size():
    with pytest.raises(tg.OpError, match=r"reshape: shape \[4, 2\] is invalid for input of size 6"):
        tg.ones(2, 3).reshape(4, 2)


def test_backward_of_non_scalar_needs_gradient():
    x = tg.ones(3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()
    assert x.grad is None
    y.backward(tg.ones(3))  # the graph was not consumed by the failed call
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2, 2])


def test_backward_of_tensor_without_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (tg.ones(2) * 2).sum().backward()


def test_gradient_of_wrong_shape():
    x = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"mismatch in shape.*\(2,\).*\(3,\)"):
        (x * 2).backward(tg.ones(2))
    assert x.grad is None


def test_unsupported_dtype_names_itself():
    with pytest.raises(TypeError, match="complex128"):
        tg.tensor(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="<U3"):
        tg.tensor(["abc"])


def test_only_float_tensors_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        tg.tensor([1, 2], requires_grad=True)


def test_unsupported_index_names_itself():
    with pytest.raises(IndexError, match="getitem: unsupported index 1.5"):
        tg.ones(3)[1.5]
    with pytest.raises(IndexError, match="must be integer or bool"):
        tg.ones(3)[tg.ones(1)]


def test_unsupported_operand_names_operation():
    with pytest.raises(TypeError, match="mul: unsupported operand type str"):
        tg.ones(2) * "a"


def test_dimension_out_of_range():
    with pytest.raises(IndexError, match="sum: dimension 2 is out of range for a tensor of 2 dimensions"):
        tg.ones(2, 3).sum(dim=2)


def test_failed_op_records_nothing():
    x = tg.ones(2, 3, requires_grad=True)
    y = x * 2
    with pytest.raises(tg.OpError):
        y + tg.ones(5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))


def test_in_place_on_leaf_that_requires_grad():
    x = tg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.zero_()
    np.testing.assert_array_equal(x.detach().numpy(), [1, 1])


def test_numpy_of_tensor_that_requires_grad():
    with pytest.raises(RuntimeError, match=r"detach\(\)\.numpy\(\)"):
        tg.ones(2, requires_grad=True).numpy()


def test_item_of_many_elements():
    with pytest.raises(RuntimeError, match="3 elements cannot be converted to Scalar"):
        tg.ones(3).item()


def test_grad_of_unused_input():
    x, y = tg.ones(2, requires_grad=True), tg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="input 1 was not used"):
        tg.autograd.grad((x * 2).sum(), [x, y])
    gx, gy = tg.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gy is None


BAD_DIMS = {  # each raises under PyTorch; transgrad gave a result (of a wrong shape) before
    "unsqueeze past the end": lambda L, x: x.unsqueeze(4),
    "expand with a leading -1": lambda L, x: x.expand(-1, 2, 3, 4),
    "sum over a repeated dim": lambda L, x: x.sum((1, 1)),
    "flip of a repeated dim": lambda L, x: x.flip(0, 0),
    "topk larger than the dim": lambda L, x: x.topk(5),
    "mm of 3-d tensors": lambda L, x: L.mm(x, x),
    "bmm of 2-d tensors": lambda L, x: L.bmm(x[0], x[0].t()),
    "index_select with a matrix": lambda L, x: x.index_select(0, L.tensor([[0]])),
}


@pytest.mark.parametrize("name", sorted(BAD_DIMS))
def test_bad_dims_raise_as_in_pytorch(name):
    import torch

    with pytest.raises((RuntimeError, IndexError)):
        BAD_DIMS[name](torch, torch.ones(2, 3, 4))
    with pytest.raises((RuntimeError, IndexError)) as e:
        BAD_DIMS[name](tg, tg.ones(2, 3, 4))
    assert str(e.value).split(":")[0] in ("unsqueeze", "expand", "sum", "flip", "topk", "mm", "bmm", "index_select")
