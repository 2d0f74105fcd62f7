"""Loops whose trip count changes from call to call: `python -m benchmarks.loops` (also part
of `python -m benchmarks`).

Three workloads, each a sequence of calls with inputs that loop a different number of times:
- rnn: h <- tanh(xs[t] @ W + h @ U) * 0.5 + h over a sequence padded to 40 steps, for as
  long as t < length and |h| < 50; `length` is a runtime argument drawn in 5 ... 40;
  gradients with respect to h, W and U;
- rnn for range: the same step `for t in range(length)`, `length` a Python int argument;
- tutorial loop: y = x * 2; while |y| < 1000: y = y * 2; its VJP, over inputs of random scale.

Per implementation: the total time of the whole sequence (first calls, tracing and
compilation included), the median time of a call once everything the sequence needs is
compiled, and the number of XLA compilations. Every implementation's gradients are checked
against PyTorch in float64 first.
"""
import argparse
import sys
import time

import numpy as np

import transgrad as tg

T, D = 40, 8
_rng = np.random.default_rng(7)
XS = _rng.standard_normal((T, D)).astype(np.float32)
W0 = (_rng.standard_normal((D, D)) * 0.3).astype(np.float32)
U0 = (_rng.standard_normal((D, D)) * 0.3).astype(np.float32)
H0 = (_rng.standard_normal(D) * 0.1).astype(np.float32)
V3 = np.array([0.1, 1.0, 0.0001], np.float32)


# ---- the programs, as each library's users write them ---------------------------------------------
def tg_rnn(h, W, U, xs, length):
    t = length * 0
    while (t < length) & (h.norm() < 50):
        h = (xs[t] @ W + h @ U).tanh() * 0.5 + h
        t = t + 1
    return (h * h).sum()


def tg_rnn_range(h, W, U, xs, length):
    for t in range(length):
        h = (xs[t] @ W + h @ U).tanh() * 0.5 + h
    return (h * h).sum()


def tg_tutorial_loop(x, v):
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    return (y * v).sum()


def torch_peers():
    import torch

    def rnn(h, W, U, xs, length):
        h, W, U = (torch.tensor(a, requires_grad=True) for a in (h, W, U))
        xs, hh = torch.from_numpy(xs), h
        t = 0
        while t < length and hh.norm() < 50:
            hh = torch.tanh(xs[t] @ W + hh @ U) * 0.5 + hh
            t += 1
        (hh * hh).sum().backward()
        return h.grad.numpy(), W.grad.numpy(), U.grad.numpy()

    def rnn_range(h, W, U, xs, length):
        h, W, U = (torch.tensor(a, requires_grad=True) for a in (h, W, U))
        xs, hh = torch.from_numpy(xs), h
        for t in range(length):
            hh = torch.tanh(xs[t] @ W + hh @ U) * 0.5 + hh
        (hh * hh).sum().backward()
        return h.grad.numpy(), W.grad.numpy(), U.grad.numpy()

    def loop(x, v):
        x = torch.tensor(x, requires_grad=True)
        y = x * 2
        while y.data.norm() < 1000:
            y = y * 2
        (y * torch.from_numpy(v)).sum().backward()
        return x.grad.numpy()

    return rnn, rnn_range, loop


def reference_rnn(h, W, U, xs, length, stop=50):
    import torch

    h, W, U = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (h, W, U))
    xs, hh, t = torch.tensor(xs, dtype=torch.float64), h, 0
    while t < length and hh.norm() < stop:
        hh = torch.tanh(xs[t] @ W + hh @ U) * 0.5 + hh
        t += 1
    (hh * hh).sum().backward()
    return h.grad.numpy(), W.grad.numpy(), U.grad.numpy()


def jax_peers():
    """jax.jit(jax.grad) of a masked lax.scan over all 40 steps (the loop rewritten for XLA),
    and the hand-restructured loop: the trip count found on the host by a jitted
    lax.while_loop, then jax.grad of a fori_loop with that (static) count."""
    import jax
    import jax.numpy as jnp

    def step(h, W, U, x):
        return jnp.tanh(x @ W + h @ U) * 0.5 + h

    def scanned(h, W, U, xs, length):
        def body(carry, x):
            h, t, going = carry
            going = going & (t < length) & (jnp.linalg.norm(h) < 50)
            return (jnp.where(going, step(h, W, U, x), h), t + 1, going), None

        (h, _, _), _ = jax.lax.scan(body, (h, 0, True), xs)
        return jnp.sum(h * h)

    scan_grad = jax.jit(jax.grad(scanned, argnums=(0, 1, 2)))

    def scanned_range(h, W, U, xs, length):
        def body(carry, x):
            h, t = carry
            return (jnp.where(t < length, step(h, W, U, x), h), t + 1), None

        (h, _), _ = jax.lax.scan(body, (h, 0), xs)
        return jnp.sum(h * h)

    scan_range_grad = jax.jit(jax.grad(scanned_range, argnums=(0, 1, 2)))

    @jax.jit
    def trips(h, W, U, xs, length):
        def cond(c):
            return (c[1] < length) & (jnp.linalg.norm(c[0]) < 50)
        return jax.lax.while_loop(cond, lambda c: (step(c[0], W, U, xs[c[1]]), c[1] + 1), (h, 0))[1]

    def counted(h, W, U, xs, n):
        return jnp.sum(jnp.square(jax.lax.fori_loop(0, n, lambda t, h: step(h, W, U, xs[t]), h)))

    counted_grad = jax.jit(jax.grad(counted, argnums=(0, 1, 2)), static_argnums=4)

    def restructured(h, W, U, xs, length):
        return counted_grad(h, W, U, xs, int(trips(h, W, U, xs, length)))

    def loop_scan(x, v):
        def body(carry, _):
            y, going = carry
            going = going & (jnp.linalg.norm(y) < 1000)
            return (jnp.where(going, y * 2, y), going), None

        (y, _), _ = jax.lax.scan(body, (x * 2, True), None, length=64)
        return jnp.sum(y * v)

    @jax.jit
    def loop_trips(x):
        return jax.lax.while_loop(lambda c: jnp.linalg.norm(c[0]) < 1000, lambda c: (c[0] * 2, c[1] + 1), (x * 2, 0))[1]

    def loop_counted(x, v, n):
        return jnp.sum(jax.lax.fori_loop(0, n, lambda i, y: y * 2, x * 2) * v)

    loop_counted_grad = jax.jit(jax.grad(loop_counted), static_argnums=2)
    return ({"jax.jit masked lax.scan": scan_grad, "JAX loop restructured by hand": restructured},
            {"jax.jit masked lax.scan": scan_range_grad},
            {"jax.jit masked lax.scan": jax.jit(jax.grad(loop_scan)),
             "JAX loop restructured by hand": lambda x, v: loop_counted_grad(x, v, int(loop_trips(x)))})


# ---- measuring ------------------------------------------------------------------------------------
class Compilations:
    """Counts XLA compilations (JAX's backend-compile events)."""

    def __init__(self):
        import jax.monitoring

        self.n = 0
        jax.monitoring.register_event_duration_secs_listener(self._event)

    def _event(self, name, secs, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            self.n += 1


def ready(g):
    import jax

    return jax.block_until_ready(g)


def workloads(calls):
    rng = np.random.default_rng(3)
    lengths = rng.integers(5, T + 1, size=calls)
    rnn_inputs = [(H0, W0, U0, XS, np.asarray(n)) for n in lengths]
    scales = 10.0 ** rng.uniform(-3, 2, size=calls)
    loop_inputs = [(np.array([1.0, 2.0, 3.0], np.float32) * np.float32(s), V3) for s in scales]
    return {"rnn": rnn_inputs, "rnn for range": [a[:4] + (int(a[4]),) for a in rnn_inputs], "tutorial loop": loop_inputs}


def peers():
    import jax

    out = {"rnn": {}, "rnn for range": {}, "tutorial loop": {}}
    for backend in ("numpy", "jax"):
        put = jax.device_put if backend == "jax" else (lambda a: a)
        for loops in ("roll", "unroll"):
            label = f"transgrad {'rolled' if loops == 'roll' else 'unrolled'} ({'NumPy' if backend == 'numpy' else 'JAX'})"
            g_rnn = tg.grad(tg.compile(tg_rnn, backend=backend, loops=loops, cache_size=64), argnums=(0, 1, 2))
            g_loop = tg.grad(tg.compile(tg_tutorial_loop, backend=backend, loops=loops, cache_size=64))
            g_range = tg.grad(tg.compile(tg_rnn_range, backend=backend, loops=loops, cache_size=64), argnums=(0, 1, 2))
            out["rnn"][label] = (lambda *a, g=g_rnn, put=put: ready([x.array for x in g(*map(put, a))]))
            out["rnn for range"][label] = (lambda *a, g=g_range, put=put: ready(
                [x.array for x in g(*map(put, a[:4]), a[4])]))
            out["tutorial loop"][label] = (lambda *a, g=g_loop, put=put: ready(g(*map(put, a)).array))
    t_rnn, t_range, t_loop = torch_peers()
    out["rnn"]["PyTorch eager"], out["tutorial loop"]["PyTorch eager"] = t_rnn, t_loop
    out["rnn for range"]["PyTorch eager"] = t_range
    j_rnn, j_range, j_loop = jax_peers()
    for name, fn in j_rnn.items():
        out["rnn"][name] = (lambda *a, fn=fn: ready(fn(*map(jax.device_put, a))))
    for name, fn in j_range.items():
        out["rnn for range"][name] = (lambda *a, fn=fn: ready(fn(*map(jax.device_put, a))))
    for name, fn in j_loop.items():
        out["tutorial loop"][name] = (lambda *a, fn=fn: ready(fn(*map(jax.device_put, a))))
    return out


def check(workload, peer, fn, inputs):
    for args in inputs[:3]:
        if workload.startswith("rnn"):
            want = reference_rnn(*args, stop=50 if workload == "rnn" else np.inf)
        else:
            x, v = args
            k = 0
            while np.linalg.norm(x.astype(np.float64) * 2.0 ** (k + 1)) < 1000:
                k += 1
            want = [v.astype(np.float64) * 2.0 ** (k + 1)]
        got = fn(*args)
        got = got if isinstance(got, (list, tuple)) else [got]
        for w, g in zip(want, got):
            np.testing.assert_allclose(np.asarray(g), w, rtol=2e-3, atol=1e-4, err_msg=f"{peer} on {workload}")


def run(calls=100, repeat=3):
    """{workload: {peer: (total s, per call s, XLA compilations)}}, in one process."""
    compiles = Compilations()
    inputs = workloads(calls)
    table = {}
    for workload, impls in peers().items():
        table[workload] = {}
        for peer, fn in impls.items():
            before = compiles.n
            t = time.perf_counter()
            for args in inputs[workload]:
                fn(*args)
            total = time.perf_counter() - t
            n = compiles.n - before
            check(workload, peer, fn, inputs[workload])
            per = []
            for _ in range(repeat):  # everything compiled now: the steady state
                t = time.perf_counter()
                for args in inputs[workload]:
                    fn(*args)
                per.append((time.perf_counter() - t) / len(inputs[workload]))
            table[workload][peer] = (total, float(np.median(per)), n)
            print(f"{workload:14s} {peer:34s} total {total:8.3f} s  per call {np.median(per) * 1e6:9.1f} us  "
                  f"XLA compilations {n}", file=sys.stderr)
    return table


def tg_long_loop(h, W, n):
    c = n * 0
    while c < n:
        h = (h @ W).tanh() * 0.5 + h * 0.5
        c = c + 1
    return (h * h).sum()


def memory(n=2000, d=256, every=45):
    """Peak NumPy memory (tracemalloc) of one gradient call of a loop of n iterations over
    vectors of d floats: every iteration saved, against the state of every 45th."""
    import tracemalloc

    rng = np.random.default_rng(5)
    h, W = rng.standard_normal(d).astype(np.float32), (rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32)
    out = {}
    for label, checkpoint in (("transgrad rolled (NumPy)", None), (f"checkpoint={every}", every)):
        g = tg.grad(tg.compile(tg_long_loop, checkpoint=checkpoint), argnums=(0, 1))
        g(h, W, np.asarray(n))
        t = time.perf_counter()
        g(h, W, np.asarray(n))
        t = time.perf_counter() - t
        tracemalloc.start()
        g(h, W, np.asarray(n))
        out[label] = (tracemalloc.get_traced_memory()[1], t)
        tracemalloc.stop()
    return out


def tg_creep(x):
    y = x + 2
    while y.norm() < 114450.0:  # 100,000 steps of * 1.0001 from |y| = 5.196
        y = y * 1.0001
    return (y * y).sum()


def long_loop_first_call():
    """Seconds of the first gradient call of a 100,000-iteration loop (NOTE [fast forward]):
    transgrad compiled on NumPy (tracing, code generation and the run), transgrad eager and
    PyTorch eager; and the number of iterations."""
    import torch

    x = np.ones(3, np.float32)
    out = {}
    for label, fn in (("transgrad compiled (NumPy), first call", tg.compile(tg_creep)), ("transgrad eager", tg_creep)):
        xt = tg.tensor(x, requires_grad=True)
        t = time.perf_counter()
        fn(xt).backward()
        out[label] = time.perf_counter() - t
    xt = torch.tensor(x, requires_grad=True)
    t = time.perf_counter()
    y, k = xt + 2, 0
    while y.norm() < 114450.0:
        y, k = y * 1.0001, k + 1
    (y * y).sum().backward()
    out["PyTorch eager"] = time.perf_counter() - t
    return out, k


def report(table, calls, mem=None, long=None):
    lines = ["## Loops whose trip count changes (NOTE [loops])", "",
             f"{calls} calls, each input looping a different number of times (rnn: length drawn in 5 ... {T} of a "
             f"sequence padded to {T}; tutorial loop: inputs of random scale, 0 ... 20 doublings). Total: the whole "
             "sequence, first calls (tracing, XLA compilation) included; per call: the median over the sequence "
             "once it is compiled.", ""]
    for workload, row in table.items():
        lines += [f"### {workload}", "", "| implementation | total | per call | XLA compilations |", "|---|---:|---:|---:|"]
        for peer, (total, per, n) in row.items():
            lines.append(f"| {peer} | {total:.3f} s | {per * 1e6:.1f} us | {n} |")
        rolled, unrolled = row["transgrad rolled (JAX)"], row["transgrad unrolled (JAX)"]
        scan = row["jax.jit masked lax.scan"]
        lines += ["", f"transgrad JAX, unrolled / rolled: total {unrolled[0] / rolled[0]:.1f}x; rolled JAX per call / "
                  f"masked lax.scan: {rolled[1] / scan[1]:.2f}x.", ""]
    if mem:
        lines += ["### memory of a long loop (2,000 iterations over 256 floats; peak NumPy memory of one gradient call)",
                  "", "| implementation | peak memory | time |", "|---|---:|---:|"]
        lines += [f"| {k} | {v[0] / 2 ** 20:.2f} MiB | {v[1] * 1e3:.1f} ms |" for k, v in mem.items()]
        lines.append("")
    if long:
        times, k = long
        lines += [f"### first gradient call of a {k:,}-iteration loop (`while y.norm() < c: y = y * 1.0001`)", "",
                  "| implementation | time |", "|---|---:|"]
        lines += [f"| {name} | {t:.2f} s |" for name, t in times.items()]
        lines.append("")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args(argv)
    print("\n".join(report(run(args.calls), args.calls, memory(), long_loop_first_call())))


if __name__ == "__main__":
    main()
