"""Functions whose generated backward code is pinned in tests/golden/.

Line numbers here appear in the generated comments: edit with care, then regenerate
with `TRANSGRAD_REGEN_GOLDEN=1 pytest tests/test_codegen.py` and review the diff.
"""
import transgrad as tg


def tutorial():
    x = tg.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    return x, out


def tutorial_loop(x):
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    return y


def mlp(x, w1, w2):
    h = (x @ w1).tanh()
    logits = h @ w2
    loss = -logits.log_softmax(dim=1)[:, 0].mean()
    return loss


def rnn(h, W, U, x):
    while h.norm() < 20:
        h = (h @ W + x @ U).tanh() * 1.5 + h
    return (h * h).sum()
