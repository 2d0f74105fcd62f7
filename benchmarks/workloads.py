"""The benchmark workloads, each written once per library, with a float64 reference.

tutorial: y = x + 2; z = y*y*3; out = z.mean()
loop:     y = x*2; while y.data.norm() < 1000: y = y*2; VJP with v = [0.1, 1.0, 0.0001]
mlp:      2-layer tanh MLP 64x784 -> 128 -> 10, softmax cross-entropy, all parameter grads
chain:    200 elementwise ops (sin, *1.01, +0.1, tanh) on a (16,) vector, then sum
"""
import numpy as np

import transgrad as tg

RNG = np.random.default_rng(0)
V = np.array([0.1, 1.0, 0.0001], np.float32)
LOOP_X = np.array([0.7, -1.3, 0.4], np.float32)
CHAIN_X = RNG.standard_normal(16).astype(np.float32)
MLP_X = RNG.standard_normal((64, 784)).astype(np.float32)
MLP_Y = RNG.integers(0, 10, 64)
MLP_W1 = (RNG.standard_normal((784, 128)) * 0.05).astype(np.float32)
MLP_W2 = (RNG.standard_normal((128, 10)) * 0.1).astype(np.float32)
ONEHOT = np.eye(10, dtype=np.float32)[MLP_Y]


# ---- transgrad (the same Python code serves eager and compiled) ------------------------------
def tg_tutorial(x):
    y = x + 2
    z = y * y * 3
    return z.mean()


def tg_loop(x, v):
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    return (y * v).sum()


def tg_mlp(w1, w2, x, onehot):
    h = (x @ w1).tanh()
    logp = (h @ w2).log_softmax(dim=1)
    return -(logp * onehot).sum() / x.shape[0]


def tg_chain(x):
    y = x
    for _ in range(50):
        y = (y.sin() * 1.01 + 0.1).tanh()
    return y.sum()


# ---- hand-written NumPy forward + backward -----------------------------------------------
def np_tutorial(x):
    y = x + 2
    z = y * y * 3
    out = z.mean()
    return out, y * np.float32(6 / x.size)


def np_loop(x, v):
    y = x * 2
    k = 0
    while np.sqrt(np.add.reduce(y * y)) < 1000:
        y = y * 2
        k += 1
    return np.add.reduce(y * v), v * np.float32(2.0 ** (k + 1))


def np_mlp(w1, w2, x, onehot):
    h = np.tanh(x @ w1)
    z = h @ w2
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    s = e.sum(1, keepdims=True)
    logp = z - np.log(s)
    n = x.shape[0]
    loss = -(logp * onehot).sum() / n
    dz = (e / s - onehot) / n
    dw2 = h.T @ dz
    dh = (dz @ w2.T) * (1 - h * h)
    return loss, (x.T @ dh, dw2)


def np_chain(x):
    y, saved = x, []
    for _ in range(50):
        t = np.tanh(np.sin(y) * np.float32(1.01) + np.float32(0.1))
        saved.append((y, t))
        y = t
    g = np.ones_like(y)
    for y, t in reversed(saved):
        g = g * (1 - t * t) * np.float32(1.01) * np.cos(y)
    return np.add.reduce(y), g


# ---- float64 references for the gradients -------------------------------------------------------
def ref_tutorial(x):
    return 6 * (x.astype(np.float64) + 2) / x.size


def ref_loop(x, v):
    k = 0
    while np.linalg.norm(x.astype(np.float64) * 2.0 ** (k + 1)) < 1000:
        k += 1
    return v.astype(np.float64) * 2.0 ** (k + 1)


def ref_mlp():
    x, w1, w2 = MLP_X.astype(np.float64), MLP_W1.astype(np.float64), MLP_W2.astype(np.float64)
    return np_mlp(w1, w2, x, ONEHOT.astype(np.float64))[1]


def ref_chain(x):
    return np_chain(x.astype(np.float64))[1]
