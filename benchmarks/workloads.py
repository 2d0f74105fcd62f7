"""The benchmark workloads, each written once per library, with a float64 reference.

tutorial: y = x + 2; z = y*y*3; out = z.mean()
loop:     y = x*2; while y.data.norm() < 1000: y = y*2; VJP with v = [0.1, 1.0, 0.0001]
mlp:      2-layer tanh MLP 64x784 -> 128 -> 10, softmax cross-entropy, all parameter grads
chain:    200 elementwise ops (sin, *1.01, +0.1, tanh) on a (16,) vector, then sum
"""
import numpy as np


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


# ---- PyTorch eager -------------------------------------------------------------------------
def torch_impls():
    import torch

    torch.set_num_threads(1)

    def tutorial(x0):
        x = torch.tensor(x0, requires_grad=True)
        y = x + 2
        z = y * y * 3
        z.mean().backward()
        return x.grad.numpy()

    def loop(x0, v):
        x = torch.tensor(x0, requires_grad=True)
        y = x * 2
        while y.data.norm() < 1000:
            y = y * 2
        y.backward(torch.tensor(v))
        return x.grad.numpy()

    def mlp(w1, w2, x, onehot):
        a, b = torch.tensor(w1, requires_grad=True), torch.tensor(w2, requires_grad=True)
        h = torch.tanh(torch.tensor(x) @ a)
        logp = torch.log_softmax(h @ b, dim=1)
        (-(logp * torch.tensor(onehot)).sum() / x.shape[0]).backward()
        return a.grad.numpy(), b.grad.numpy()

    def chain(x0):
        x = torch.tensor(x0, requires_grad=True)
        y = x
        for _ in range(50):
            y = torch.tanh(torch.sin(y) * 1.01 + 0.1)
        y.sum().backward()
        return x.grad.numpy()

    return dict(tutorial=tutorial, loop=loop, mlp=mlp, chain=chain)


# ---- JAX -------------------------------------------------------------------------------------
def jnp_tutorial(x):
    import jax.numpy as jnp

    y = x + 2
    z = y * y * 3
    return jnp.mean(z)


def jnp_loop_eager(x, v):
    import jax.numpy as jnp

    y = x * 2
    while jnp.linalg.norm(y) < 1000:  # concrete values: runs eagerly, not under jit
        y = y * 2
    return jnp.sum(y * v)


def jnp_mlp(w1, w2, x, onehot):
    import jax
    import jax.numpy as jnp

    h = jnp.tanh(x @ w1)
    logp = jax.nn.log_softmax(h @ w2, axis=1)
    return -jnp.sum(logp * onehot) / x.shape[0]


def jnp_chain(x):
    import jax.numpy as jnp

    y = x
    for _ in range(50):
        y = jnp.tanh(jnp.sin(y) * 1.01 + 0.1)
    return jnp.sum(y)


def jax_impls():
    """jax.grad run eagerly, and jax.jit(jax.grad) (the loop restructured by hand: trip count
    found on the host, then a fori_loop with that static count under jit)."""
    import jax
    import jax.numpy as jnp

    def loop_restructured(x, v):
        k = 0
        while float(jnp.linalg.norm(x * 2.0 ** (k + 1))) < 1000:
            k += 1
        return _loop_jit(x, v, k)

    def _loop_fn(x, v, k):
        y = jax.lax.fori_loop(0, k, lambda i, y: y * 2, x * 2)
        return jnp.sum(y * v)

    _loop_jit = jax.jit(jax.grad(_loop_fn), static_argnums=2)
    eager = dict(tutorial=jax.grad(jnp_tutorial), loop=jax.grad(jnp_loop_eager),
                 mlp=jax.grad(jnp_mlp, argnums=(0, 1)), chain=jax.grad(jnp_chain))
    jitted = dict(tutorial=jax.jit(jax.grad(jnp_tutorial)), loop=loop_restructured,
                  mlp=jax.jit(jax.grad(jnp_mlp, argnums=(0, 1))), chain=jax.jit(jax.grad(jnp_chain)))
    return eager, jitted


# ---- HIPS autograd and Tangent (source transformation) ------------------------------------------
def ag_tutorial(x):
    import autograd.numpy as anp

    y = x + 2
    z = y * y * 3
    return anp.mean(z)


def ag_loop(x, v):
    import autograd.numpy as anp

    y = x * 2
    while anp.linalg.norm(y) < 1000:
        y = y * 2
    return anp.sum(y * v)


def ag_mlp(w1, w2, x, onehot):
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    h = anp.tanh(anp.dot(x, w1))
    z = anp.dot(h, w2)
    logp = z - logsumexp(z, axis=1, keepdims=True)
    return -anp.sum(logp * onehot) / x.shape[0]


def ag_chain(x):
    import autograd.numpy as anp

    y = x
    for _ in range(50):
        y = anp.tanh(anp.sin(y) * 1.01 + 0.1)
    return anp.sum(y)


def tn_tutorial(x):
    y = x + 2.0
    z = y * y * 3.0
    return np.mean(z)


def tn_loop(x, v):
    y = x * 2.0
    while np.linalg.norm(y) < 1000.0:
        y = y * 2.0
    return np.sum(y * v)


def tn_mlp(w1, w2, x, onehot):
    h = np.tanh(np.dot(x, w1))
    z = np.dot(h, w2)
    m = np.max(z, axis=1, keepdims=True)
    s = z - m
    logp = s - np.log(np.sum(np.exp(s), axis=1, keepdims=True))
    return -np.sum(logp * onehot) / 64.0


def tn_chain(x):
    y = x
    for _ in range(50):
        y = np.tanh(np.sin(y) * 1.01 + 0.1)
    return np.sum(y)


def autograd_impls():
    from autograd import grad

    return dict(tutorial=grad(ag_tutorial), loop=grad(ag_loop), mlp=grad(ag_mlp, argnum=(0, 1)),
                chain=grad(ag_chain))
