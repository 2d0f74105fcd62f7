"""Eager autograd step time: transgrad vs PyTorch eager vs hand-written NumPy.

A step is: make the leaf, run the forward, run `backward()` (transgrad runs its cached
generated backward). Every implementation's gradient is checked against a float64
closed form first. Run: `python -m benchmarks.eager` (needs the `bench` extra).
"""
import time

import numpy as np

import transgrad as tg

X0 = np.random.default_rng(0).standard_normal(16).astype(np.float32)


def tutorial_tg():
    x = tg.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    z.mean().backward()
    return x.grad.numpy()


def tutorial_torch():
    import torch

    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    z.mean().backward()
    return x.grad.numpy()


def tutorial_numpy():
    x = np.ones((2, 2), np.float32)
    y = x + 2
    z = y * y * 3
    z.mean()
    return np.float32(1 / 4) * 3 * 2 * y  # d mean / dz, d z / dy, d y / dx


def _chain(lib, x):
    y = x
    for _ in range(50):  # 4 elementwise ops per round: 200 in all
        y = lib.tanh(lib.sin(y) * 1.01 + 0.1)
    return y.sum()


def chain_tg():
    x = tg.tensor(X0, requires_grad=True)
    _chain(tg, x).backward()
    return x.grad.numpy()


def chain_torch():
    import torch

    x = torch.tensor(X0, requires_grad=True)
    _chain(torch, x).backward()
    return x.grad.numpy()


def chain_numpy():
    y, saved = X0, []
    for _ in range(50):
        s = np.sin(y)
        t = np.tanh(s * np.float32(1.01) + np.float32(0.1))
        saved.append((y, t))
        y = t
    g = np.ones_like(y)
    for y, t in reversed(saved):
        g = g * (1 - t * t) * np.float32(1.01) * np.cos(y)
    return g


def chain_reference():
    y, saved = X0.astype(np.float64), []
    for _ in range(50):
        t = np.tanh(np.sin(y) * 1.01 + 0.1)
        saved.append((y, t))
        y = t
    g = np.ones_like(y)
    for y, t in reversed(saved):
        g = g * (1 - t * t) * 1.01 * np.cos(y)
    return g


def median_time(fn, number, repeat=15):
    for _ in range(max(number // 10, 5)):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t) / number)
    return float(np.median(times))


def first_backward_seconds(n_ops):
    x = tg.tensor(X0 + np.float32(n_ops), requires_grad=True)  # a fresh structure: new constants
    y = x
    for _ in range(n_ops // 4):
        y = (y.sin() * 1.01 + 0.1 * (1 + n_ops)).tanh()
    out = y.sum()
    t = time.perf_counter()
    out.backward()
    return time.perf_counter() - t


def main():
    import torch

    torch.set_num_threads(1)
    rows = []
    workloads = {
        "tutorial 2x2": (tutorial_tg, tutorial_torch, tutorial_numpy, lambda: np.full((2, 2), 4.5), 3000),
        "chain 200 ops": (chain_tg, chain_torch, chain_numpy, chain_reference, 200),
    }
    for name, (f_tg, f_torch, f_np, ref, number) in workloads.items():
        for f in (f_tg, f_torch, f_np):
            np.testing.assert_allclose(f(), ref(), rtol=2e-4, atol=1e-6)
        t = {k: median_time(f, number) for k, f in (("transgrad", f_tg), ("torch", f_torch), ("numpy", f_np))}
        rows.append((name, t))
    print("| workload | transgrad eager | PyTorch eager | hand NumPy | transgrad / PyTorch | transgrad / NumPy |")
    print("|---|---|---|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t['transgrad'] * 1e6:.1f} us | {t['torch'] * 1e6:.1f} us | {t['numpy'] * 1e6:.1f} us "
              f"| {t['transgrad'] / t['torch']:.2f} | {t['transgrad'] / t['numpy']:.2f} |")
    print()
    for n in (100, 1000, 10000):
        s = first_backward_seconds(n)
        print(f"first (uncached) backward of a {n}-op graph: {s * 1e3:.1f} ms ({s / n * 1e6:.1f} us/op)")


if __name__ == "__main__":
    main()
