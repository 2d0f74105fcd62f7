"""Data-parallel training on the JAX backend: an MLP on scikit-learn's digits (8x8 images,
10 classes), its gradient compiled by transgrad into one XLA program and run with the batch
sharded over every available device (jax.jit's sharding propagation does the rest).

Try more (virtual) devices on a CPU-only machine:
    XLA_FLAGS=--xla_force_host_platform_device_count=4 python examples/data_parallel.py
"""
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from sklearn.datasets import load_digits

import transgrad as tg


def loss(w1, b1, w2, b2, x, onehot):
    h = (x @ w1 + b1).tanh()
    logp = (h @ w2 + b2).log_softmax(dim=1)
    return -(logp * onehot).sum() / x.shape[0]


def main(steps=150, lr=0.5, seed=0):
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target
    n_dev = len(jax.devices())
    n = (len(x) // (8 * n_dev)) * 8 * n_dev  # the batch divides evenly over the devices
    x, onehot = x[:n], np.eye(10, dtype=np.float32)[y[:n]]

    mesh = Mesh(np.array(jax.devices()), ("data",))
    batch = NamedSharding(mesh, P("data"))
    x, onehot = jax.device_put(x, batch), jax.device_put(onehot, batch)

    rng = np.random.default_rng(seed)
    params = [jnp.asarray(rng.standard_normal((64, 32)) * 0.1, jnp.float32), jnp.zeros(32, jnp.float32),
              jnp.asarray(rng.standard_normal((32, 10)) * 0.1, jnp.float32), jnp.zeros(10, jnp.float32)]
    step = tg.value_and_grad(loss, argnums=(0, 1, 2, 3), backend="jax")
    print(f"{n} examples sharded over {n_dev} device(s): {[str(d) for d in jax.devices()]}")
    losses = []
    for i in range(steps):
        value, grads = step(*params, x, onehot)
        params = [p - lr * g.array for p, g in zip(params, grads)]
        losses.append(float(value.item()))
        if i % 25 == 0 or i == steps - 1:
            print(f"step {i:4d}  loss {losses[-1]:.4f}")
    h = np.tanh(np.asarray(x) @ np.asarray(params[0]) + np.asarray(params[1]))
    accuracy = float((np.argmax(h @ np.asarray(params[2]) + np.asarray(params[3]), 1) == y[:n]).mean())
    print(f"training accuracy {accuracy:.3f}; traces compiled: {step.cache_info().size}")
    return losses, accuracy


if __name__ == "__main__":
    main()
