"""Rounding and modular arithmetic as PyTorch users write them: a straight-through quantiser
(`x + (x.round() - x).detach()`), periodic features (`t % period`), bucketing (`//`), and
`floor`/`ceil`/`trunc`/`frac`/`sign` inside a loss. PyTorch's rules: rounding has gradient 0,
`a % b` has gradients 1 and -floor(a / b)."""
import numpy as np
import torch

import transgrad as tg
from harness import check_function, modes, randn, rng


# ---- 1. a quantised linear layer trained through a straight-through estimator ---------------------------
def quantised_regression(lib):
    def loss(w, x, y):
        q = w + ((w * 4).round() / 4 - w).detach()  # forward: w on a 1/4 grid; backward: identity
        return ((x @ q - y) ** 2).mean()

    return loss


@modes()
def test_straight_through_quantiser(mode):
    r = rng(81)
    calls = [(randn(r, 3), randn(r, 5, 3), randn(r, 5)), (randn(r, 3), randn(r, 5, 3), randn(r, 5))]
    check_function(quantised_regression, calls, argnums=(0,), mode=mode)


# ---- 2. periodic features of a time input, and a learnable period ---------------------------------------
def periodic_features(lib):
    def loss(t, period, w):
        phase = (t % period) / period  # in [0, 1): the gradient of `%` in both t and period
        bucket = (t // period).detach()  # which period: an integer-valued constant
        feats = lib.stack([phase, phase * phase, bucket.sign() * phase.frac()], dim=1)
        return ((feats @ w).tanh() ** 2).sum() + (t.floor() + t.ceil() + t.trunc()).sum() * 0.1

    return loss


@modes()
def test_periodic_features_with_modular_arithmetic(mode):
    r = rng(82)
    t0 = np.array([0.3, 2.7, 5.2, 7.9, -1.4, -3.6], np.float32)  # none on a multiple of the period
    calls = [(t0, np.array(2.5, np.float32), randn(r, 3)), (t0 * 1.7, np.array(3.1, np.float32), randn(r, 3))]
    check_function(periodic_features, calls, argnums=(0, 1, 2), mode=mode)


def test_modular_arithmetic_matches_pytorch_on_integers_and_signs():
    a, b = [7, -7, 7, -7, 0], [3, 3, -3, -3, 5]
    for op in (lambda x, y: x % y, lambda x, y: x // y, lambda x, y: x.fmod(y), lambda x, y: x.remainder(y)):
        for dtype in ("int64", "float32"):
            got = op(tg.tensor(np.array(a, dtype)), tg.tensor(np.array(b, dtype)))
            want = op(torch.tensor(np.array(a, dtype)), torch.tensor(np.array(b, dtype)))
            assert str(got.dtype) == str(want.dtype).replace("torch.", "")
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    x = tg.tensor([0.5, -1.5, 2.5], requires_grad=True)
    y = x.round()  # half to even, and it records a gradient of 0, as PyTorch's
    assert y.requires_grad and type(y.grad_fn).__name__ == "RoundBackward0"
    np.testing.assert_array_equal(y.detach().numpy(), [0.0, -2.0, 2.0])
