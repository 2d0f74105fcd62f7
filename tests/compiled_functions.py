"""A corpus of small user functions with data-dependent control flow, compiled by the
tests. Line numbers appear in generated code and guard messages."""
import transgrad as tg  # noqa: F401  (tests cite this file's line numbers)


def tutorial(x):
    y = x + 2
    z = y * y * 3
    out = z.mean()
    return out


def tutorial_loop(x):
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    return y


def branch(x):
    if x.sum() > 0:
        return (x * x).sum()
    else:
        return (-x).sum() * 3


def nested_loops(x):
    total = x.sum() * 0
    i = 0
    while x.max() * (i + 1) < 4:
        j = 0
        while (x * j).sum() < 2 * (i + 1):
            total = total + (x * (i + j)).sum()
            j += 1
        i += 1
    return total


def item_arithmetic(x):
    s = x.sum().item()
    return (x * s).sum() + s


def mlp(x, w1, w2):
    h = (x @ w1).tanh()
    logits = h @ w2
    return -logits.log_softmax(dim=1)[:, 0].mean()
