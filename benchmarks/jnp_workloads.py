"""The workloads written against jax.numpy at module level, for Tangent's compile='jax'
(a source transformation needs the function's own text)."""
import jax
import jax.numpy as jnp


def tutorial(x):
    y = x + 2.0
    z = y * y * 3.0
    return jnp.mean(z)


def loop(x, v):
    y = x * 2.0
    while jnp.linalg.norm(y) < 1000.0:
        y = y * 2.0
    return jnp.sum(y * v)


def mlp(w1, w2, x, onehot):
    h = jnp.tanh(jnp.dot(x, w1))
    logp = jax.nn.log_softmax(jnp.dot(h, w2), axis=1)
    return -jnp.sum(logp * onehot) / 64.0


def chain(x):
    y = x
    for _ in range(50):
        y = jnp.tanh(jnp.sin(y) * 1.01 + 0.1)
    return jnp.sum(y)
