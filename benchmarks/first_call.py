"""First calls, each in a fresh process: `python -m benchmarks.first_call` prints the table.

A cell is the first gradient call of a workload in a process where the library has already
run once (JAX's backend started, transgrad's code generator loaded, on another function):
what a new function costs, tracing, code generation and XLA compilation included. XLA
compilations are counted with jax.monitoring (the events `jax_log_compiles` logs).
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

PEERS = ("transgrad tg.grad (JAX)", "transgrad backward() (JAX)", "jax.jit(jax.grad)", "transgrad tg.grad (NumPy)")
WORKLOADS = ("tutorial 2x2", "tutorial 1000x1000", "loop", "mlp", "chain")


def cell(peer, workload):
    """Run in the child: {"seconds", "compilations"} of one first call."""
    import jax
    import jax.numpy as jnp

    import transgrad as tg

    from . import workloads as W

    compiles = []

    def listen(event, secs, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(secs)

    jax.monitoring.register_event_duration_secs_listener(listen)

    def warm(x):
        return (x * 3 + 1).sin().sum()

    w = np.arange(3, dtype=np.float32) + 5
    jax.block_until_ready(jax.jit(jax.grad(lambda x: jnp.sum(jnp.sin(x * 3 + 1))))(jax.device_put(w)))
    tg.grad(warm, backend="jax")(jax.device_put(w)).array.block_until_ready()
    tg.grad(warm)(w)
    xw = tg.tensor(jax.device_put(w), requires_grad=True)
    tg.compile(warm, backend="jax")(xw).backward()
    name = workload.split()[0]
    x1k = np.random.default_rng(1).standard_normal((1000, 1000)).astype(np.float32)
    args = {"tutorial 2x2": (np.ones((2, 2), np.float32),), "tutorial 1000x1000": (x1k,), "loop": (W.LOOP_X, W.V),
            "mlp": (W.MLP_W1, W.MLP_W2, W.MLP_X, W.ONEHOT), "chain": (W.CHAIN_X,)}[workload]
    argnums = (0, 1) if name == "mlp" else 0
    fn = getattr(W, "tg_" + name)
    if "JAX" in peer or "jax" in peer:
        args = [jax.device_put(a) for a in args]
    compiles.clear()
    t = time.perf_counter()
    if peer == "jax.jit(jax.grad)":
        jax.block_until_ready(W.jax_impls()[1][name](*args))
    elif peer == "transgrad backward() (JAX)":
        ts = [tg.tensor(a, requires_grad=i in (argnums if isinstance(argnums, tuple) else (argnums,)))
              for i, a in enumerate(args)]
        tg.compile(fn, backend="jax")(*ts).backward()
        jax.block_until_ready(ts[0].grad.array)
    else:
        g = tg.grad(fn, argnums=argnums, backend="jax" if "JAX" in peer else "numpy")(*args)
        jax.block_until_ready([getattr(x, "array", x) for x in (g if isinstance(g, tuple) else (g,))])
    return {"seconds": time.perf_counter() - t, "compilations": len(compiles)}


def run(repeat=3):
    """{workload: {peer: (median seconds, compilations)}}, each cell the median of `repeat`
    fresh processes."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = {}
    for workload in WORKLOADS:
        out[workload] = {}
        for peer in PEERS:
            runs = []
            for _ in range(repeat):
                r = subprocess.run([sys.executable, "-m", "benchmarks.first_call", peer, workload], cwd=root,
                                   capture_output=True, text=True, check=True)
                runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
            out[workload][peer] = (float(np.median([r["seconds"] for r in runs])), runs[0]["compilations"])
    return out


def report(results):
    lines = ["## First call of a new function (fresh process, libraries warm)", "",
             "Median of 3 processes; in each, the libraries first ran on another function, so a cell is what "
             "a new function costs: tracing, code generation, XLA compilation. (n) is the number of XLA "
             "compilations (jax.monitoring). The loop's jax.jit peer is the loop restructured by hand.", "",
             "| workload | " + " | ".join(PEERS) + " | tg.grad JAX / jax.jit | backward() JAX / jax.jit |",
             "|---|" + "---:|" * (len(PEERS) + 2)]
    for workload, row in results.items():
        jit = row["jax.jit(jax.grad)"][0]
        cells = [f"{t * 1e3:.0f} ms ({n})" for t, n in row.values()]
        lines.append(f"| {workload} | " + " | ".join(cells) + f" | {row[PEERS[0]][0] / jit:.2f} | "
                     f"{row[PEERS[1]][0] / jit:.2f} |")
    return lines + [""]


def import_time(repeat=7):
    """Median seconds of `import numpy` and of `import transgrad` after it, in fresh processes
    with bytecode cached (as an installed package has it), and the heavy modules `import
    transgrad` loaded."""
    import tempfile

    code = ("import sys, time, json; t = time.perf_counter(); import numpy; t1 = time.perf_counter(); "
            "import transgrad; t2 = time.perf_counter(); print(json.dumps([t1 - t, t2 - t1, "
            "[m for m in ('jax', 'libcst', 'torch') if m in sys.modules]]))")
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        runs = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                          check=True).stdout) for _ in range(repeat + 1)][1:]  # the first writes it
    return float(np.median([r[0] for r in runs])), float(np.median([r[1] for r in runs])), runs[0][2]


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(json.dumps(cell(sys.argv[1], sys.argv[2])))
    else:
        print("\n".join(report(run())))
