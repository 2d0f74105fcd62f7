"""Side-by-side benchmarks: `python -m benchmarks` (after `pip install ".[bench]"`).

Every peer computes the same gradients of the same workloads (see workloads.py); each
result is checked against a float64 reference before it is timed. A cell is the median of
11 batches after a warm-up, the peers' batches interleaved round by round. Writes
benchmarks/results.md and benchmarks/results.png.
"""
import argparse
import os
import platform
import sys
import time
import tracemalloc

import numpy as np

import transgrad as tg

from . import codegen, first_call, loops
from . import jnp_workloads as J
from .workloads import (
    CHAIN_X, LOOP_X, MLP_W1, MLP_W2, MLP_X, ONEHOT, V, ag_chain, ag_loop, ag_mlp, ag_tutorial, jax_impls,
    np_chain, np_loop, np_mlp, np_tutorial, ref_chain, ref_loop, ref_mlp, ref_tutorial, tg_chain, tg_loop,
    tg_mlp, tg_tutorial, tn_chain, tn_loop, tn_mlp, tn_tutorial, torch_impls,
)

HERE = os.path.dirname(os.path.abspath(__file__))
X22 = np.ones((2, 2), np.float32)
X1K = np.random.default_rng(1).standard_normal((1000, 1000)).astype(np.float32)


def batch_size(fn, number, batch_seconds=0.1):
    """Calls per timed batch: `number`, fewer for a slow peer; warms the peer up too."""
    t = time.perf_counter()
    fn()
    number = max(1, min(number, int(batch_seconds / max(time.perf_counter() - t, 1e-7))))
    for _ in range(max(number // 5, 2)):
        fn()
    return number


def interleaved(steps, repeat):
    """Median per-call time of each peer, timing one batch of every peer per round, so that
    the machine's drift (frequency, the other core's load) falls on all peers alike."""
    times = {peer: [] for peer in steps}
    for _ in range(repeat):
        for peer, (fn, number) in steps.items():
            t = time.perf_counter()
            for _ in range(number):
                fn()
            times[peer].append((time.perf_counter() - t) / number)
    return {peer: float(np.median(ts)) for peer, ts in times.items()}


def as_numpy(g):
    if isinstance(g, (tuple, list)):
        return [as_numpy(x) for x in g]
    if isinstance(g, tg.Tensor):
        return np.asarray(g.array)
    return np.asarray(g)


# ---- each peer: workload -> zero-argument step returning the gradient(s) ------------------------------
def transgrad_eager():
    w1, w2 = tg.tensor(MLP_W1, requires_grad=True), tg.tensor(MLP_W2, requires_grad=True)
    xm, oh, v = tg.tensor(MLP_X), tg.tensor(ONEHOT), tg.tensor(V)

    def tutorial(x0):
        def step():
            x = tg.tensor(x0, requires_grad=True)
            tg_tutorial(x).backward()
            return x.grad
        return step

    def loop():
        x = tg.tensor(LOOP_X, requires_grad=True)
        tg_loop(x, v).backward()
        return x.grad

    def mlp():
        w1.grad = w2.grad = None
        tg_mlp(w1, w2, xm, oh).backward()
        return w1.grad, w2.grad

    def chain():
        x = tg.tensor(CHAIN_X, requires_grad=True)
        tg_chain(x).backward()
        return x.grad

    return {"tutorial 2x2": tutorial(X22), "tutorial 1000x1000": tutorial(X1K), "loop": loop, "mlp": mlp,
            "chain": chain}


def transgrad_compiled(backend):
    import jax

    put = (lambda a: jax.device_put(a)) if backend == "jax" else (lambda a: a)
    def done(g):  # wait for the device, as the JAX peers' timings do
        if backend == "jax":
            jax.block_until_ready([x.array for x in g] if isinstance(g, tuple) else g.array)
        return g

    g_tut, g_loop = tg.grad(tg_tutorial, backend=backend), tg.grad(tg_loop, backend=backend)
    g_mlp, g_chain = tg.grad(tg_mlp, argnums=(0, 1), backend=backend), tg.grad(tg_chain, backend=backend)
    x22, x1k, lx, v, cx = map(put, (X22, X1K, LOOP_X, V, CHAIN_X))
    m = list(map(put, (MLP_W1, MLP_W2, MLP_X, ONEHOT)))
    return {"tutorial 2x2": lambda: done(g_tut(x22)), "tutorial 1000x1000": lambda: done(g_tut(x1k)),
            "loop": lambda: done(g_loop(lx, v)), "mlp": lambda: done(g_mlp(*m)), "chain": lambda: done(g_chain(cx))}


def transgrad_backward_jax():
    """`out = f(x); out.backward()` with f compiled for JAX: the PyTorch way of getting gradients."""
    import jax

    f_tut, f_loop = tg.compile(tg_tutorial, backend="jax"), tg.compile(tg_loop, backend="jax")
    f_mlp, f_chain = tg.compile(tg_mlp, backend="jax"), tg.compile(tg_chain, backend="jax")
    w1, w2 = (tg.tensor(jax.device_put(a), requires_grad=True) for a in (MLP_W1, MLP_W2))
    xm, oh = (tg.tensor(jax.device_put(a)) for a in (MLP_X, ONEHOT))

    def step(f, x, *rest):
        def run():
            x.grad = None
            f(x, *rest).backward()
            x.grad.array.block_until_ready()
            return x.grad
        return run

    def mlp():
        w1.grad = w2.grad = None
        f_mlp(w1, w2, xm, oh).backward()
        jax.block_until_ready([w1.grad.array, w2.grad.array])
        return w1.grad, w2.grad

    def leaf(a):
        return tg.tensor(jax.device_put(a), requires_grad=True)

    return {"tutorial 2x2": step(f_tut, leaf(X22)), "tutorial 1000x1000": step(f_tut, leaf(X1K)),
            "loop": step(f_loop, leaf(LOOP_X), tg.tensor(jax.device_put(V))), "mlp": mlp,
            "chain": step(f_chain, leaf(CHAIN_X))}


def hand_numpy():
    return {"tutorial 2x2": lambda: np_tutorial(X22)[1], "tutorial 1000x1000": lambda: np_tutorial(X1K)[1],
            "loop": lambda: np_loop(LOOP_X, V)[1], "mlp": lambda: np_mlp(MLP_W1, MLP_W2, MLP_X, ONEHOT)[1],
            "chain": lambda: np_chain(CHAIN_X)[1]}


def pytorch():
    import torch

    f = torch_impls()
    w1 = torch.tensor(MLP_W1, requires_grad=True)
    w2 = torch.tensor(MLP_W2, requires_grad=True)
    xm, oh = torch.tensor(MLP_X), torch.tensor(ONEHOT)

    def mlp():
        w1.grad = w2.grad = None
        h = torch.tanh(xm @ w1)
        logp = torch.log_softmax(h @ w2, dim=1)
        (-(logp * oh).sum() / xm.shape[0]).backward()
        return w1.grad.numpy(), w2.grad.numpy()

    return {"tutorial 2x2": lambda: f["tutorial"](X22), "tutorial 1000x1000": lambda: f["tutorial"](X1K),
            "loop": lambda: f["loop"](LOOP_X, V), "mlp": mlp, "chain": lambda: f["chain"](CHAIN_X)}


def jax_peers():
    import jax

    eager, jitted = jax_impls()
    x22, x1k, lx, v, cx = map(jax.device_put, (X22, X1K, LOOP_X, V, CHAIN_X))
    m = list(map(jax.device_put, (MLP_W1, MLP_W2, MLP_X, ONEHOT)))

    def ready(g):
        jax.block_until_ready(g)
        return g

    def make(fs):
        return {"tutorial 2x2": lambda: ready(fs["tutorial"](x22)), "tutorial 1000x1000": lambda: ready(fs["tutorial"](x1k)),
                "loop": lambda: ready(fs["loop"](lx, v)), "mlp": lambda: ready(fs["mlp"](*m)),
                "chain": lambda: ready(fs["chain"](cx))}

    # the value too, as `out = f(x); out.backward()` computes it (the loop has no such peer)
    vg = {name: (lambda f: lambda *a: f(*a)[1])(jax.jit(jax.value_and_grad(getattr(J, name), argnums=(0, 1) if name == "mlp" else 0)))
          for name in ("tutorial", "mlp", "chain")}
    with_value = make(dict(vg, loop=None))
    with_value["loop"] = "no jitted loop with a value"
    return make(eager), make(jitted), with_value


def hips_autograd():
    from autograd import grad

    g_tut, g_loop, g_chain = grad(ag_tutorial), grad(ag_loop), grad(ag_chain)
    g_mlp = grad(lambda ws: ag_mlp(ws[0], ws[1], MLP_X, ONEHOT))
    return {"tutorial 2x2": lambda: g_tut(X22), "tutorial 1000x1000": lambda: g_tut(X1K),
            "loop": lambda: g_loop(LOOP_X, V), "mlp": lambda: g_mlp((MLP_W1, MLP_W2)), "chain": lambda: g_chain(CHAIN_X)}


def tangent_peers():
    import jax
    import tangent

    out, out_jax = {}, {}
    plain = {"tutorial": (tn_tutorial, (0,)), "loop": (tn_loop, (0,)), "mlp": (tn_mlp, (0, 1)), "chain": (tn_chain, (0,))}
    jnp_fns = {"tutorial": J.tutorial, "loop": J.loop, "mlp": J.mlp, "chain": J.chain}
    args = {"tutorial 2x2": ("tutorial", (X22,)), "tutorial 1000x1000": ("tutorial", (X1K,)), "loop": ("loop", (LOOP_X, V)),
            "mlp": ("mlp", (MLP_W1, MLP_W2, MLP_X, ONEHOT)), "chain": ("chain", (CHAIN_X,))}
    for name, (kind, a) in args.items():
        fn, wrt = plain[kind]
        df = tangent.grad(fn, wrt=wrt)
        out[name] = (lambda df=df, a=a: df(*a))
        try:
            dj = tangent.grad(jnp_fns[kind], wrt=wrt, compile="jax")
            ja = [jax.device_put(x) for x in a]
            dj(*ja)
            out_jax[name] = (lambda dj=dj, ja=ja: jax.block_until_ready(dj(*ja)))
        except Exception as e:  # e.g. the loop: jax.jit cannot branch on a traced value
            out_jax[name] = type(e).__name__
    return out, out_jax


REFERENCES = {"tutorial 2x2": lambda: ref_tutorial(X22), "tutorial 1000x1000": lambda: ref_tutorial(X1K),
              "loop": lambda: ref_loop(LOOP_X, V), "mlp": ref_mlp, "chain": lambda: ref_chain(CHAIN_X)}
NUMBER = {"tutorial 2x2": 2000, "tutorial 1000x1000": 5, "loop": 1000, "mlp": 30, "chain": 100}


def check(name, peer, got):
    want = REFERENCES[name]()
    got = as_numpy(got)
    wants, gots = (want, got) if isinstance(want, (tuple, list)) else ([want], [got])
    for w, g in zip(wants, gots):
        np.testing.assert_allclose(g, w, rtol=2e-3, atol=2e-5, err_msg=f"{peer} on {name}")


# ---- memory ---------------------------------------------------------------------------------
def peak_memory(fn):
    fn()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


# ---- report -------------------------------------------------------------------------------------
def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import jax
    import torch

    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, NumPy {np.__version__}, "
            f"JAX {jax.__version__} ({jax.devices()[0].platform}), PyTorch {torch.__version__}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and first-call sizes (a smoke run)")
    parser.add_argument("--out", default=HERE)
    args = parser.parse_args(argv)
    peers = {"transgrad eager": transgrad_eager(), "transgrad compiled (NumPy)": transgrad_compiled("numpy"),
             "transgrad compiled (JAX)": transgrad_compiled("jax"),
             "transgrad compiled (JAX), backward()": transgrad_backward_jax(), "hand NumPy": hand_numpy(),
             "PyTorch eager": pytorch()}
    jax_eager, jax_jit, jax_vg = jax_peers()
    peers["jax.grad (eager)"], peers["jax.jit(jax.grad)"] = jax_eager, jax_jit
    peers["jax.jit(jax.value_and_grad)"] = jax_vg
    peers["HIPS autograd"] = hips_autograd()
    peers["Tangent"], peers["Tangent compile='jax'"] = tangent_peers()
    results = {}
    for name in REFERENCES:
        results[name], steps = {}, {}
        for peer, impls in peers.items():
            step = impls.get(name)
            if not callable(step):
                results[name][peer] = step or "n/a"
                continue
            check(name, peer, step())
            steps[peer] = (step, batch_size(step, max(1, NUMBER[name] // (10 if args.quick else 1))))
        timed = interleaved(steps, repeat=3 if args.quick else 11)
        results[name] = {peer: timed.get(peer, results[name].get(peer)) for peer in peers}  # in peer order
        for peer, t in results[name].items():
            if isinstance(t, float):
                print(f"{name:20s} {peer:28s} {t * 1e6:12.1f} us", file=sys.stderr)
    memory = {name: {peer: peak_memory(peers[peer][name]) for peer in
                     ("transgrad eager", "transgrad compiled (NumPy)", "hand NumPy", "HIPS autograd", "Tangent")}
              for name in REFERENCES}
    sizes = (100, 1000) if args.quick else (100, 1000, 10000)
    first_lines = first_call.report(first_call.run(1 if args.quick else 3))
    first_lines += codegen.report(codegen.run(sizes))
    numpy_s, transgrad_s, loaded = first_call.import_time()
    first_lines += ["## `import transgrad`", "",
                    f"Median of 7 fresh processes: `import numpy` {numpy_s * 1e3:.0f} ms, then `import transgrad` "
                    f"{transgrad_s * 1e3:.0f} ms more ({(numpy_s + transgrad_s) * 1e3:.0f} ms in all); heavy modules "
                    f"it loaded: {', '.join(loaded) or 'none (JAX and LibCST load on first use)'}.", ""]
    calls = 20 if args.quick else 100
    loop_lines = loops.report(loops.run(calls), calls, loops.memory(), loops.long_loop_first_call())
    write_report(args.out, results, memory, first_lines, machine(), loop_lines)


def write_report(out, results, memory, first_lines, machine_text, loop_lines=()):
    lines = ["# Benchmarks", "", f"Machine: {machine_text}.", "",
             "Gradients of each workload, float32; every implementation's gradients were checked against a "
             "float64 reference before timing. A cell is the median per-call time over 11 batches, the peers' "
             "batches interleaved; ratios are to the fastest "
             "peer and to hand-written NumPy (forward + backward) in the same run. Regenerate with "
             "`python -m benchmarks`.", ""]
    for name, row in results.items():
        times = {p: t for p, t in row.items() if isinstance(t, float)}
        fastest, hand = min(times.values()), times["hand NumPy"]
        lines += [f"## {name}", "", "| implementation | time | / fastest | / hand NumPy |", "|---|---:|---:|---:|"]
        for peer, t in row.items():
            if isinstance(t, float):
                lines.append(f"| {peer} | {_fmt(t)} | {t / fastest:.2f} | {t / hand:.2f} |")
            else:
                lines.append(f"| {peer} | n/a ({t}) | | |")
        lines.append("")
    lines += ["## Peak memory (tracemalloc: NumPy allocations of one gradient step)", "",
              "| workload | " + " | ".join(next(iter(memory.values()))) + " |",
              "|---|" + "---:|" * len(next(iter(memory.values())))]
    for name, row in memory.items():
        lines.append(f"| {name} | " + " | ".join(_mib(v) for v in row.values()) + " |")
    lines += [""] + list(first_lines) + list(loop_lines)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    chart(out, results)
    print("\n".join(lines))


def _mib(b):
    return f"{b / 2 ** 20:.2f} MiB" if b < 2 ** 20 else f"{b / 2 ** 20:.1f} MiB"


def _fmt(t):
    return f"{t * 1e6:.1f} us" if t < 1e-3 else f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.2f} s"


def chart(out, results):
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    peers = list(next(iter(results.values())))
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 5), sharey=False)
    for ax, name in zip(axes, names):
        row = results[name]
        hand = row["hand NumPy"]
        vals = [row[p] / hand if isinstance(row[p], float) else 0 for p in peers]
        colors = ["tab:blue" if p.startswith("transgrad") else "tab:gray" for p in peers]
        ax.barh(range(len(peers)), vals, color=colors)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_yticks(range(len(peers)))
        ax.set_yticklabels(peers if ax is axes[0] else [""] * len(peers), fontsize=8)
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("time / hand NumPy (log)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "results.png"), dpi=110)


if __name__ == "__main__":
    main()
