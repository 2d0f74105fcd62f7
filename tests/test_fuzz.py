"""Random programs over the op table, checked four ways: eager against compiled NumPy against
compiled JAX against float64 central differences, and optimised against unoptimised code.

A program is a list of steps over a pool of values of mutually broadcastable shapes:
elementwise ops, broadcasting binary ops, reductions, indexing, a data-dependent `if`, a
`while` bounded by a Python counter (stays unrolled) and one bounded by a tensor counter
(rolls). CI runs a bounded profile; for 1,000+ programs:

    TRANSGRAD_FUZZ_EXAMPLES=1000 python -m pytest tests/test_fuzz.py
"""
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import transgrad as tg
from transgrad import interp
from transgrad.engine.run import prepare

EXAMPLES = int(os.environ.get("TRANSGRAD_FUZZ_EXAMPLES", "20"))
SHAPES = [(), (3,), (2, 3), (2, 1), (1, 3)]  # every pair broadcasts
UNARY = ["sin", "cos", "tanh", "sigmoid", "abs", "relu", "square", "softexp"]
BINARY = ["add", "sub", "mul", "div", "maximum", "where"]


def unary(name, v):
    if name == "square":
        return v * v
    if name == "softexp":
        return v.tanh().exp()  # bounded, so programs stay finite
    return getattr(v, name)()


def binary(name, a, b):
    if name == "add":
        return a + b
    if name == "sub":
        return a - b
    if name == "mul":
        return a * b
    if name == "div":
        return a / (b.tanh() + 1.5)  # never near zero
    if name == "maximum":
        return tg.maximum(a, b)
    return tg.where(a > b, a, b * 0.5)


step = st.one_of(
    st.tuples(st.just("unary"), st.sampled_from(UNARY), st.integers(0, 99)),
    st.tuples(st.just("binary"), st.sampled_from(BINARY), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("reduce"), st.sampled_from(["sum", "mean", "amax"]), st.integers(0, 99)),
    st.tuples(st.just("index"), st.sampled_from(["slice", "ints"]), st.integers(0, 99)),
    st.tuples(st.just("if"), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("while"), st.integers(0, 99)),
    st.tuples(st.just("loop"), st.sampled_from(UNARY), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("repeat"), st.sampled_from(UNARY), st.integers(0, 99), st.integers(0, 99)),
)
programs = st.tuples(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=3), st.lists(step, min_size=1, max_size=7),
                     st.integers(0, 2 ** 31 - 1))


def run(program, xs, decisions):
    """Run a program on tensors; `decisions` records the data-dependent choices it made."""
    _, steps, _ = program
    pool = list(xs)
    for s in steps:
        kind = s[0]
        v = (pool[s[-1] % len(pool)] if kind in ("unary", "while", "reduce", "index", "loop", "repeat")
             else pool[s[2] % len(pool)])
        if kind == "unary":
            pool.append(unary(s[1], v))
        elif kind == "binary":
            pool.append(binary(s[1], v, pool[s[3] % len(pool)]))
        elif kind == "reduce" and v.ndim:  # keepdim keeps every shape broadcastable with the rest
            pool.append(getattr(v, s[1])(dim=-1, keepdim=True))
        elif kind == "index" and v.ndim:  # shape-preserving: reversed, or repeated integer indices
            n = v.shape[0]
            pool.append(v[::-1] if s[1] == "slice" else v[tg.tensor([n - 1] + [0] * (n - 1))])
        elif kind == "if":
            w = pool[s[2] % len(pool)]
            taken = bool(v.sum() > 0)
            decisions.append(taken)
            pool.append(v * 2 + w.sum() if taken else (v - 1).tanh())
        elif kind == "while":
            i = 0
            while bool(v.abs().mean() < 1.0) and i < 3:  # bounded: at most three trips
                v = v * 1.5 + 0.25
                i += 1
            decisions.append(i)
            pool.append(v)
        elif kind == "repeat":  # a Python loop: a counted loop when long enough (NOTE [loops])
            w = pool[s[2] % len(pool)]
            for _ in range(4):
                v = unary(s[1], v) * 0.9 + w.mean() * 0.1
            pool.append(v)
        elif kind == "loop":  # a loop that rolls (NOTE [loops]): its tensor test alone ends it
            w, c, n = pool[s[2] % len(pool)], tg.zeros(()), 0
            while bool((v.abs().mean() < 2.0) & (c < 5)):
                v = unary(s[1], v) * 1.5 + w.mean() * 0.1 + 0.25
                c = c + 1
                n += 1
            decisions.append(n)
            pool.append(v)
    weights = tg.tensor(np.linspace(0.5, 1.5, pool[-1].numel()).reshape(pool[-1].shape).astype(pool[-1].dtype))
    return (pool[-1] * weights).sum()


def inputs(program, dtype):
    rng = np.random.default_rng(program[2])
    return [rng.uniform(-2, 2, s).astype(dtype) for s in program[0]]


def loss_fn(program):
    def loss(*xs):
        return run(program, xs, [])

    return loss


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(programs)
def test_random_programs(program):
    xs32 = inputs(program, np.float32)
    argnums = tuple(range(len(xs32)))

    # eager, with its backward
    leaves = [tg.tensor(x, requires_grad=True) for x in xs32]
    decisions = []
    out = run(program, leaves, decisions)
    if not out.requires_grad:
        return
    out.backward()
    eager_value, eager_grads = out.item(), [x.grad.numpy() if x.grad is not None else np.zeros_like(x0)
                                             for x, x0 in zip(leaves, xs32)]

    # compiled NumPy and compiled JAX, loops rolled; and unrolled (NOTE [loops])
    for backend, loops in (("numpy", "roll"), ("jax", "roll"), ("numpy", "unroll")):
        f = tg.compile(loss_fn(program), backend=backend, loops=loops)
        value, grads = tg.value_and_grad(f, argnums=argnums)(*xs32)
        np.testing.assert_allclose(value.item(), eager_value, rtol=2e-5, atol=1e-5, err_msg=f"{backend} {loops}")
        for g, e in zip(grads, eager_grads):
            np.testing.assert_allclose(g.numpy(), e, rtol=2e-4, atol=1e-5, err_msg=f"{backend} {loops}")

    # float64 central differences along a random direction, where the path is stable
    xs64 = [x.astype(np.float64) for x in xs32]
    rng = np.random.default_rng(program[2] + 1)
    us = [rng.standard_normal(x.shape) for x in xs64]
    eps = 1e-6

    def f64(t):
        d = []
        with tg.no_grad():
            v = run(program, [tg.tensor(x + t * u) for x, u in zip(xs64, us)], d)
        return v.item(), d

    (fp, dp), (fm, dm), (_, d0) = f64(eps), f64(-eps), f64(0.0)
    if dp == dm == d0:
        leaves64 = [tg.tensor(x, requires_grad=True) for x in xs64]
        g64 = tg.autograd.grad(run(program, leaves64, []), leaves64, allow_unused=True)
        analytic = sum(float((g.numpy() * u).sum()) for g, u in zip(g64, us) if g is not None)
        assert np.isclose(analytic, (fp - fm) / (2 * eps), rtol=1e-4, atol=1e-6)

    # the optimised generated backward against the unoptimised graph, on the interpreter
    leaves = [tg.tensor(x, requires_grad=True) for x in xs32]
    out = run(program, leaves, [])
    order, c, seeds = prepare([out], None, leaves)
    want = interp.run(c.raw, c.arguments(order, seeds, raw=True))
    got = c.fn(*c.arguments(order, seeds))
    got = got if len(c.graph.outputs) > 1 else (got,)
    for g, w in zip(got, want):
        if w is not None:
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(programs)
def test_random_programs_with_every_repetition_rolled(program):
    """Counted loops (NOTE [loops]) roll runs of 1,000 operations and more; here every run of
    three equal blocks rolls, whatever it is (a Python loop, or the same steps by chance):
    the compiled programs must still agree with eager."""
    from transgrad.passes import roll

    xs32 = inputs(program, np.float32)
    leaves = [tg.tensor(x, requires_grad=True) for x in xs32]
    out = run(program, leaves, [])
    if not out.requires_grad:
        return
    out.backward()
    kept, roll.MIN_COUNTED_OPS = roll.MIN_COUNTED_OPS, 0
    try:
        for backend in ("numpy", "jax"):
            f = tg.compile(loss_fn(program), backend=backend, cache_size=4096)
            value, grads = tg.value_and_grad(f, argnums=tuple(range(len(xs32))))(*xs32)
            np.testing.assert_allclose(value.item(), out.item(), rtol=2e-5, atol=1e-5, err_msg=backend)
            for g, x, x0 in zip(grads, leaves, xs32):
                e = x.grad.numpy() if x.grad is not None else np.zeros_like(x0)
                np.testing.assert_allclose(g.numpy(), e, rtol=2e-4, atol=1e-5, err_msg=backend)
    finally:
        roll.MIN_COUNTED_OPS = kept
