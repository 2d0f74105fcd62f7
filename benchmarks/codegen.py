"""Code generation, phase by phase: how the first call of a compiled function spends its time.

A chain of n traced operations (sin, *1.01, +0.1, tanh on a (16,) vector, then a sum), a new
structure each time, made into its joint forward+backward program (what `tg.grad` runs):
trace (running the function on tracing tensors, and its VJP), passes (the joint graph and
its optimisations), printing (LibCST: Graph -> source), compile (Python's `compile()`),
and for JAX, XLA (jax.jit's tracing and compilation of that source, on its first call).
"""
import time

import numpy as np

import transgrad as tg
from transgrad._state import gc_paused
from transgrad.backends import get_backend, load
from transgrad.codegen.emit import emit
from transgrad.passes.reuse import reuse_buffers

from .workloads import CHAIN_X

PHASES = ("trace", "passes", "printing", "compile")


def chain_n(x, n):
    y = x
    for _ in range(n // 4):
        y = (y.sin() * 1.01 + 0.1).tanh()
    return y.sum()


def phases(n, backend="numpy"):
    """Seconds per phase for a chain of `n` operations (one run), with the cyclic garbage
    collector paused as transgrad pauses it while it generates code."""
    with gc_paused():
        return _phases(n, backend)


def _phases(n, backend):
    be = get_backend(backend)
    cf = tg.compile(chain_n, backend=backend, loops="unroll")  # n operations of straight-line code
    x = CHAIN_X + np.float32(n + (0.5 if backend == "jax" else 0))  # values no other run traced
    args, argnums = (x, n), (0,)
    leaves, key = cf._leaves(args, {}, argnums)
    t0 = time.perf_counter()
    tr = cf._build(args, {}, leaves, key, argnums)
    t1 = time.perf_counter()
    graph = tr.joint_graph(argnums)
    if be.name == "numpy":
        graph = reuse_buffers(graph)
    t2 = time.perf_counter()
    bound = {}
    source = emit(graph, "chain", be.name, be.HELPERS, constants=tr.consts, bound=bound, as_tuple=True)
    t3 = time.perf_counter()
    namespace = dict(be.NAMESPACE, **{k: tr.const_values[id(v)] for k, v in bound.items()})
    fn = load(source, "chain", namespace)["chain"]
    t4 = time.perf_counter()
    out = {"trace": t1 - t0, "passes": t2 - t1, "printing": t3 - t2, "compile": t4 - t3}
    if be.name == "jax":
        import jax

        jax.block_until_ready(jax.jit(fn)(x))
        out["XLA"] = time.perf_counter() - t4
    out["ops"] = len(tr.fwd_eqns)
    return out


def run(sizes=(100, 1000, 10000), backends=("numpy", "jax")):
    """{(backend, n): phases}, the best of three runs for the small chains (one for 10,000)."""
    phases(100), phases(100, "jax")  # warm: the code generator's caches and JAX's first compilation
    results = {}
    for be in backends:
        for n in sizes:
            runs = [phases(n, be) for _ in range(3 if n < 10000 else 1)]
            results[(be, n)] = min(runs, key=lambda r: sum(v for k, v in r.items() if k != "ops"))
    return results


def report(results):
    lines = ["## Code generation, phase by phase (us per traced operation)", "",
             "A chain of n operations made into its joint forward+backward program; XLA is jax.jit's "
             "tracing and compilation of the generated source (JAX only). Regenerate with "
             "`python -m benchmarks`.", "",
             "| backend | ops | trace | passes | printing | compile | XLA | total (no XLA) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (be, _), r in results.items():
        per = {k: v / r["ops"] * 1e6 for k, v in r.items() if k != "ops"}
        xla = f"{per['XLA']:.0f}" if "XLA" in per else ""
        total = sum(per[p] for p in PHASES)
        lines.append(f"| {be} | {r['ops']} | " + " | ".join(f"{per[p]:.1f}" for p in PHASES)
                     + f" | {xla} | {total:.1f} |")
    return lines + [""]


if __name__ == "__main__":
    print("\n".join(report(run())))
