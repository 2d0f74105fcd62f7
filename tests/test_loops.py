"""Loops stay loops (NOTE [loops]): a data-dependent loop is rolled into one program for every
trip count, its backward a reversed loop. Rolled against unrolled against eager against
float64 central differences, over inputs that loop different numbers of times."""
import numpy as np
import pytest

import transgrad as tg
from transgrad.testing import check_grads

import compiled_functions as cf
from standalone import run_without_transgrad

rng = np.random.default_rng(0)
W4 = (rng.standard_normal((4, 4)) * 0.5).astype(np.float32)
U4 = (rng.standard_normal((4, 4)) * 0.5).astype(np.float32)
W_GROW = np.eye(4, dtype=np.float32) * 1.5 + W4 * 0.3  # every eigenvalue past 1: loops under it end
W_GLOBAL = tg.tensor(W_GROW, requires_grad=True)


def recurrence(h, W, U, x):
    while h.norm() < 20:
        h = (h @ W + x @ U).tanh() * 1.5 + h
    return (h * h).sum()


def two_states(h, c, W):
    while c.abs().sum() < 30:
        h, c = (c @ W).tanh() + h * 0.5, c * 1.1 + h
    return h.sum() + (c * c).mean()


def until_break(h, W):
    while True:
        h = (h @ W).sin() + h * 1.2
        if h.abs().max() > 8:
            break
    return h.sum()


def newton_sqrt(a):
    x = a * 0 + 1
    while ((x * x - a).abs() > 1e-4).any():
        x = x - (x * x - a) / (2 * x)
    return x.sum()


def global_weights(h):
    while h.norm() < 10:
        h = h @ W_GLOBAL + 0.5
    return h.sum()


def cases():
    """(function, argument lists at several scales: each loops a different number of times)."""
    h = rng.standard_normal(4).astype(np.float32)
    x = rng.standard_normal(4).astype(np.float32)
    return [
        (recurrence, [[h * s, W4, U4, x] for s in (0.1, 1.0, 4.0)]),
        (two_states, [[h, h * s, W4] for s in (0.5, 2.0, 5.0)]),
        (until_break, [[h * s, W4] for s in (0.2, 1.0, 3.0)]),
        (newton_sqrt, [[np.abs(h) * s + 0.5] for s in (1.0, 4.0, 16.0)]),
    ]


def grads(fn, args):
    ts = [tg.tensor(a, requires_grad=True) for a in args]
    out = fn(*ts)
    out.backward()
    return out.item(), [t.grad.numpy() if t.grad is not None else np.zeros_like(a) for t, a in zip(ts, args)]


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("fn,argsets", cases(), ids=lambda c: getattr(c, "__name__", ""))
def test_rolled_matches_unrolled_eager_and_float64(fn, argsets, backend):
    rolled, unrolled = tg.compile(fn, backend=backend), tg.compile(fn, loops="unroll")
    grads(rolled, argsets[0])
    before = rolled.cache_info()  # traces are shared per code object: count from here
    tol = dict(rtol=1e-4, atol=1e-5) if backend == "numpy" else dict(rtol=2e-3, atol=1e-4)  # XLA's float32
    for args in argsets:
        value, g = grads(rolled, args)
        for other in (unrolled, fn):
            v2, g2 = grads(other, args)
            np.testing.assert_allclose(value, v2, rtol=tol["rtol"] / 10)
            for a, b in zip(g, g2):
                np.testing.assert_allclose(a, b, **tol)
    info = rolled.cache_info()  # one trace for every trip count
    assert (info.misses, info.retraces, info.size) == (before.misses, before.retraces, before.size), info
    assert all(t.loops for t in rolled.traces)
    if backend == "numpy":  # float64 is another trace (dtypes key traces), rolled as well
        for args in argsets:
            check_grads(rolled, [np.asarray(a, np.float64) for a in args], order=1, rtol=1e-4, atol=1e-6)
        assert rolled.cache_info().retraces == 0 and all(t.loops for t in rolled.traces)
    assert unrolled.cache_info().size >= 2  # the unrolled traces differ by trip count


def count_up(h, step):
    while h.sum() < 100:
        h = h + step * (1 + h.tanh() ** 2)
    return (h * h).sum()


def test_counts_past_the_capacity_of_a_rolled_xla_loop_retrace_with_twice_the_room():
    f = tg.compile(count_up, backend="jax")
    h = np.array([0.5, -0.25, 1.0], np.float32)
    for step in (1.0, 0.5, 0.1, 0.04, 0.01, 1.5):  # 17, 34, 168, 418, about 1700, 12 iterations
        v1, g1 = grads(f, [h, np.float32(step)])
        v2, g2 = grads(count_up, [h, np.float32(step)])
        np.testing.assert_allclose(v1, v2, rtol=1e-4)
        for a, b in zip(g1, g2):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    caps = sorted(c for t in f.traces for c in t.capacity.values())
    # at least 64 rows, and twice the traced count: 64 holds 17 and 34, 168 gets 512 (which holds 418)
    assert caps == [64, 512, 4096], caps
    assert all("past the buffers of the cached trace's rolled loop" in m for m in f.retrace_log), f.retrace_log
    assert any("rolled (one program for every trip count below 64)" in repr(t) for t in f.traces)


def test_the_generated_code_keeps_the_loop_and_does_not_grow_with_the_trip_count():
    f = tg.compile(recurrence)
    h = rng.standard_normal(4).astype(np.float32)
    small = f.code(tg.tensor(h * 4.0, requires_grad=True), tg.tensor(W4, requires_grad=True), tg.tensor(U4, requires_grad=True),
                   tg.tensor(h))
    large = f.code(tg.tensor(h * 0.01, requires_grad=True), tg.tensor(W4, requires_grad=True), tg.tensor(U4, requires_grad=True),
                   tg.tensor(h))
    assert small == large
    assert "    while True:\n" in small and "if not norm < 20: break" in small
    assert "for i in reversed(range(trips)):" in small and "h_saved.append(h_1)" in small
    assert "# grad of: h = (h @ W + x @ U).tanh() * 1.5 + h" in small
    # `x @ U` is the same in every iteration: computed once before the loop, its gradient summed
    assert small.index("matmul = x @ U") < small.index("while True:")
    assert small.index("g_U = ") > small.index("for i in reversed(range(trips)):")
    assert "rolled (one program for every trip count below 125000)" in repr(f.traces[0])  # then a trace would be too long


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_zero_and_one_trips_after_rolling(backend):
    f = tg.compile(recurrence, backend=backend)
    h = rng.standard_normal(4).astype(np.float32)
    x = rng.standard_normal(4).astype(np.float32)
    grads(f, [h * 0.1, W4, U4, x])  # traced: many trips
    before = f.cache_info()
    for start in (h * 100.0, h * 14.0):  # no trip: the norm is past 20 already; one trip
        v1, g1 = grads(f, [start, W4, U4, x])
        v2, g2 = grads(recurrence, [start, W4, U4, x])
        np.testing.assert_allclose(v1, v2, rtol=1e-6)
        for a, b in zip(g1, g2):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    info = f.cache_info()
    assert (info.misses, info.retraces, info.size) == (before.misses, before.retraces, before.size), info


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_tg_grad_rolls_and_captured_weights_get_their_gradient(backend):
    h = rng.standard_normal(4).astype(np.float32)
    df = tg.grad(global_weights, backend=backend)
    for s in (0.1, 1.0, 3.0):
        x = tg.tensor(h * s, requires_grad=True)
        global_weights(x).backward()
        np.testing.assert_allclose(df(tg.tensor(h * s)).numpy(), x.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert df._f.cache_info().size == 1 and df._f.traces[0].loops
    f = tg.compile(global_weights, backend=backend)
    for s in (0.1, 3.0):
        W_GLOBAL.grad = None
        f(tg.tensor(h * s)).backward()
        compiled = W_GLOBAL.grad.numpy()
        W_GLOBAL.grad = None
        global_weights(tg.tensor(h * s)).backward()
        np.testing.assert_allclose(compiled, W_GLOBAL.grad.numpy(), rtol=1e-5, atol=1e-6)
    info = f.cache_info()
    assert info.misses == 1 and info.retraces == 0 and all(t.loops for t in f.traces), info


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_second_order_through_a_rolled_loop(backend):
    f = tg.compile(newton_sqrt, backend=backend)
    a0 = np.array([2.0, 5.0, 9.0], np.float32)
    for s in (1.0, 4.0):
        for fn in (f, newton_sqrt):
            a = tg.tensor(a0 * s, requires_grad=True)
            (g,) = tg.autograd.grad(fn(a), a, create_graph=True)
            (gg,) = tg.autograd.grad((g * g).sum(), a)
            if fn is f:
                got = (g.detach().numpy(), gg.numpy())
        np.testing.assert_allclose(got[0], g.detach().numpy(), rtol=1e-4)
        np.testing.assert_allclose(got[1], gg.numpy(), rtol=1e-3)
        # d sqrt(a) = 1 / (2 sqrt(a)); d/da (1/(4a)) = -1/(4a^2)
        np.testing.assert_allclose(got[0], 0.5 / np.sqrt(a0 * s), rtol=1e-3)
        np.testing.assert_allclose(got[1], -0.25 / (a0 * s) ** 2, rtol=2e-2)
    assert f.traces[0].loops


def leaky_recurrence(x, w, n):
    h = x
    for _ in range(n):
        h = (h @ w).tanh() + h.detach() * 0.3  # the detached skip takes no gradient
    return (h ** 2).sum()


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_second_order_through_a_rolled_loop_that_detaches_raises_or_agrees(backend):
    # a rolled body is not the run's own equations: where it stopped a gradient cannot be replayed on
    # tensors, so create_graph says so (it gave wrong numbers); first order and tg.grad twice agree with eager
    rng = np.random.default_rng(4)
    x0, w0 = (rng.standard_normal((3, 3)).astype(np.float32) * 0.6 for _ in range(2))
    f = tg.compile(leaky_recurrence, backend=backend)
    x, w = tg.tensor(x0, requires_grad=True), tg.tensor(w0, requires_grad=True)
    with pytest.raises(RuntimeError, match="create_graph=True through a call of compiled leaky_recurrence, whose "
                                           "backward reads a value it took without gradient"):
        tg.autograd.grad(f(x, w, 3), x, create_graph=True)[0].sum().backward()
    assert f.traces[0].loops
    (gx,) = tg.autograd.grad(f(x, w, 3), x)
    xe = tg.tensor(x0, requires_grad=True)
    (ge,) = tg.autograd.grad(leaky_recurrence(xe, tg.tensor(w0, requires_grad=True), 3), xe, create_graph=True)
    np.testing.assert_allclose(gx.numpy(), ge.detach().numpy(), rtol=1e-5, atol=1e-6)
    (ge * ge).sum().backward()
    twice = tg.grad(lambda x, w: (tg.grad(leaky_recurrence)(x, w, 3) ** 2).sum(), backend=backend)
    np.testing.assert_allclose(twice(tg.tensor(x0), tg.tensor(w0)).numpy(), xe.grad.numpy(), rtol=1e-4, atol=1e-5)


def inner_rolls(x):
    h = x
    while h.norm() < 40:  # its iterations hold a loop each: stays unrolled
        g = h * 0.5
        while g.abs().sum() < h.norm():  # each run of it rolls
            g = g * 1.3 + 0.1
        h = h + g.tanh() + 1
    return (h * h).sum()


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_an_inner_loop_rolls_in_each_run_of_the_outer_one(backend):
    f = tg.compile(inner_rolls, backend=backend)
    for s in (1.0, 0.5, 2.0, 8.0):
        x = np.array([0.5, -1.0, 2.0], np.float32) * s
        v1, g1 = grads(f, [x])
        v2, g2 = grads(inner_rolls, [x])
        np.testing.assert_allclose(v1, v2, rtol=1e-5)
        np.testing.assert_allclose(g1[0], g2[0], rtol=1e-4, atol=1e-5)
        if backend == "numpy":
            check_grads(f, [x.astype(np.float64)], order=1, rtol=1e-4, atol=1e-6)
    assert all(t.loops and "line" in repr(t) for t in f.traces)
    assert all("while h.norm() < 40:" in repr(t) and "loop not rolled: its" in repr(t) for t in f.traces)


def keeps_history(h, W):
    states = []
    while h.norm() < 10:
        h = h @ W + 1
        states.append(h)
    return tg.stack(states).sum()


def decides_inside(h, W):
    while h.norm() < 10:
        h = h @ W + 1
        if h.sum() > 0:
            h = h * 0.9
    return h.sum()


@pytest.mark.parametrize("fn,args", [
    (cf.nested_loops, [np.array([0.5, 0.25, 0.75], np.float32)]),  # inner steps differ by a Python int
    (keeps_history, [np.array([0.1, 0.2, 0.3, 0.4], np.float32), W_GROW]),
    (decides_inside, [np.array([0.1, 0.2, 0.3, 0.4], np.float32), W_GROW]),
], ids=["nested", "keeps_history", "decides_inside"])
def test_loops_that_do_not_roll_stay_unrolled_and_right(fn, args):
    f = tg.compile(fn)
    v1, g1 = grads(f, args)
    v2, g2 = grads(fn, args)
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_an_exported_rolled_loop_runs_any_trip_count_without_transgrad(tmp_path, backend):
    def tutorial_loop(x):
        y = x * 2
        while y.data.norm() < 1000:
            y = y * 2
        return y

    tg.export(tg.compile(tutorial_loop, backend=backend), tg.tensor([1.0, 2.0, 3.0], requires_grad=True),
              path=str(tmp_path / "rolled.py"))
    code = ("import numpy as np, rolled as m\n"
            "for s in (1.0, 0.001, 100.0, 1000.0):\n"
            "    x = np.array([1.0, 2.0, 3.0], np.float32) * s\n"
            "    k = 0\n"
            "    while np.linalg.norm(x * 2 ** (k + 1)) < 1000: k += 1\n"
            "    y, g = m.value_and_vjp(x, np.ones(3, np.float32))\n"
            "    assert np.allclose(y, x * 2.0 ** (k + 1)) and np.allclose(g, 2.0 ** (k + 1)), (s, k, y, g)\n"
            "print('ok')\n")
    run_without_transgrad(tmp_path, code)


def counted_too(v):
    i = 0
    while bool(v.abs().mean() < 1.0) and i < 3:  # a Python counter ends it too
        v = v * 1.2 + 0.05
        i += 1
    return v.sum()


def if_in_a_for(x):
    for _ in range(4):  # Python's range ends it, not the decision
        if x.sum() < 10:
            x = x * 2
        else:
            x = x - 1
    return (x * x).sum()


def for_with_break(x):
    for _ in range(5):
        if x.sum() > 10:
            break
        x = x * 2
    return (x * x).sum()


def python_counter_decides(x):
    i = 0
    while x.norm() < 100:  # the test alone ends it, but a Python counter picks the step
        i += 1
        x = x * 2 if i < 4 else x * 3
    return (x * x).sum()


def appends_to_a_list(x):
    seen = []
    while x.norm() < 100:
        seen.append(x)
        x = x * 2
    return x.sum() * len(seen)  # the count reaches the result as a Python int


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("fn,starts", [
    (counted_too, [2.8, 0.01, 3.5]),  # traced ending by its test after 2 trips; then the counter ends it
    (if_in_a_for, [0.5, 0.01, 3.0]),
    (for_with_break, [1.0, 0.01, 4.0]),
    (python_counter_decides, [100.0, 1.0, 0.01]),  # traced with 2 trips, then 6 and 13: the counter flips the step
    (appends_to_a_list, [100.0, 1.0, 0.01]),
], ids=["and_counter", "if_in_for", "for_break", "counter_in_body", "list_length"])
def test_loops_python_state_ends_are_not_rolled_and_stay_right(fn, starts, backend):
    f = tg.compile(fn, backend=backend)
    base = np.array([0.3, -0.2, 0.25], np.float32)
    for s in starts:
        v1, g1 = grads(f, [base * s])
        v2, g2 = grads(fn, [base * s])
        np.testing.assert_allclose(v1, v2, rtol=1e-5)
        np.testing.assert_allclose(g1[0], g2[0], rtol=1e-5, atol=1e-6)
    assert not any(t.loops for t in f.traces)


def test_why_a_loop_stays_unrolled_is_said():
    f = tg.compile(counted_too)
    grads(f, [np.array([0.3, -0.2, 0.25], np.float32) * 2.8])
    assert "loop not rolled: the loop can end in a way the trace does not see" in repr(f.traces[-1])
    g = tg.compile(decides_inside)
    for s in (1.0, 0.01):
        grads(g, [np.array([0.1, 0.2, 0.3, 0.4], np.float32) * s, W_GROW])
    assert any("loop not rolled: its body decides too (line" in repr(t) for t in g.traces), g.traces
    assert any("(the loop is not rolled: its body decides too" in m for m in g.retrace_log), g.retrace_log
    h = tg.compile(python_counter_decides)
    grads(h, [np.array([0.3, -0.2, 0.25], np.float32)])
    assert "loop not rolled: its iterations change Python values the trace does not see (`i`)" in repr(h.traces[-1])


def python_temporaries(x):
    while x.norm() < 100:
        scale, shape = 2.0, x.shape  # made in the first iteration, the same in every one
        x = x.reshape(shape) * scale
    return x.sum()


def test_python_values_the_same_in_every_iteration_roll():
    f = tg.compile(python_temporaries)
    for s in (1.0, 0.01, 10.0):
        v1, g1 = grads(f, [np.array([0.3, -0.2, 0.25], np.float32) * s])
        v2, g2 = grads(python_temporaries, [np.array([0.3, -0.2, 0.25], np.float32) * s])
        np.testing.assert_allclose(v1, v2, rtol=1e-6)
        np.testing.assert_allclose(g1[0], g2[0], rtol=1e-6)
    assert f.cache_info().size == 1 and f.traces[0].loops


# ---- the idioms of PyTorch programs, inside loops ----------------------------------------------------
W_IDIOM = np.eye(4, dtype=np.float32) * 1.3 + W4 * 0.2


def inplace(h, W):
    h = h.clone()
    while h.norm() < 30:
        h = h * 1.0
        h.mul_(1.1)
        h = h + (h @ W).tanh()
        h += 0.01
    return (h * h).sum()


def setitem_loop(h, W):
    buf = tg.zeros(2, 4)
    while h.norm() < 30:
        buf[0] = h
        h = (buf[0].clone() @ W) + buf[1]
        buf[1] = h * 0.1
    return (h * buf).sum()


def with_view(h, W):
    while h.norm() < 30:
        v = h.view(2, 2)
        h = (v * 1.5).reshape(4) @ W + 0.1
    return h.sum()


def detach_inside(h, W):
    while h.norm() < 30:
        h = h @ W + h.detach() * 0.1
    return h.sum()


def no_grad_inside(h, W):
    s = h * 0
    while h.norm() < 30:
        h = h @ W + 0.1
        with tg.no_grad():
            s = s + h
    return h.sum() + s.sum()


def two_outputs(h, W):
    acc = h * 0
    while h.norm() < 30:
        h = h @ W + 0.1
        acc = acc + h.sin()
    return acc.sum(), h


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("fn", [inplace, setitem_loop, with_view, detach_inside, no_grad_inside, two_outputs],
                         ids=lambda f: f.__name__)
def test_pytorch_idioms_inside_loops_match_eager(fn, backend):
    f = tg.compile(fn, backend=backend)
    for s in (0.1, 1.0, 5.0):
        h0 = np.array([0.3, -0.2, 0.5, 0.1], np.float32) * s
        results = []
        for g in (f, fn):
            ts = [tg.tensor(h0, requires_grad=True), tg.tensor(W_IDIOM, requires_grad=True)]
            out = g(*ts)
            loss = out[0] + out[1].sum() if isinstance(out, tuple) else out
            loss.backward()
            results.append((loss.item(), [t.grad.numpy() for t in ts]))
        (v1, g1), (v2, g2) = results
        np.testing.assert_allclose(v1, v2, rtol=1e-5)
        for a, b in zip(g1, g2):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-5 * np.abs(b).max())
    rolls = fn not in (inplace, setitem_loop)  # values written in place after a save: unrolled, and said
    assert all(bool(t.loops) == rolls for t in f.traces), f.traces
    if not rolls:
        assert all("not its operations' alone" in repr(t) for t in f.traces if "looped" in repr(t))


# ---- checkpoints: the state of every k-th iteration saved, the rest run again -------------------------
@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("every", [1, 3, 50])
@pytest.mark.parametrize("fn,argsets", cases(), ids=lambda c: getattr(c, "__name__", ""))
def test_checkpointed_loops_match_eager(fn, argsets, every, backend):
    f = tg.compile(fn, backend=backend, checkpoint=every)
    tol = dict(rtol=1e-4, atol=1e-5) if backend == "numpy" else dict(rtol=2e-3, atol=1e-4)
    for args in argsets:
        v1, g1 = grads(f, args)
        v2, g2 = grads(fn, args)
        np.testing.assert_allclose(v1, v2, rtol=tol["rtol"] / 10)
        for a, b in zip(g1, g2):
            np.testing.assert_allclose(a, b, **tol)
    assert all(t.loops for t in f.traces)


def test_a_checkpointed_loop_saves_every_kth_state_and_runs_each_stretch_again():
    f = tg.compile(recurrence, checkpoint=3)
    h = rng.standard_normal(4).astype(np.float32)
    code = f.code(tg.tensor(h * 0.1, requires_grad=True), tg.tensor(W4, requires_grad=True), tg.tensor(U4),
                  tg.tensor(h))
    assert "if trips % 3 == 0: h_saved.append(h_1)" in code and "tanh_saved" not in code.split("def ")[1]
    assert "for i in reversed(range(0, trips, 3)):" in code and "m = min(3, trips - i)" in code
    check_grads(tg.compile(recurrence, checkpoint=3), [np.asarray(a, np.float64) for a in (h * 0.1, W4, U4, h)],
                order=1, rtol=1e-4, atol=1e-6)
    # second order through the recomputed stretches
    g = tg.compile(newton_sqrt, checkpoint=2)
    a = tg.tensor([2.0, 5.0, 9.0], requires_grad=True)
    (d,) = tg.autograd.grad(g(a), a, create_graph=True)
    (dd,) = tg.autograd.grad((d * d).sum(), a)
    np.testing.assert_allclose(d.detach().numpy(), 0.5 / np.sqrt([2.0, 5.0, 9.0]), rtol=1e-3)
    np.testing.assert_allclose(dd.numpy(), -0.25 / np.array([2.0, 5.0, 9.0]) ** 2, rtol=2e-2)
    with pytest.raises(ValueError, match="checkpoint=0"):
        tg.compile(recurrence, checkpoint=0)


# ---- counted loops: no tensor test, the traced count --------------------------------------------------
XS = rng.standard_normal((300, 4)).astype(np.float32)  # long enough to roll (MIN_COUNTED_OPS)


def rnn_over_rows(h, W, U, xs):
    for t in range(xs.shape[0]):  # PyTorch's RNN idiom: the count is the shape's
        h = (xs[t] @ W + h @ U).tanh()
    return (h * h).sum()


def reversed_rows(h, W, xs):
    for t in range(xs.shape[0] - 1, -1, -2):  # every other row, from the last
        h = (h @ W).sin() + xs[t] * 0.5
    return h.sum()


def fixed_steps(h, W, steps=300):
    for _ in range(steps):
        h = (h @ W).sin() * 0.5 + h * 0.5  # contracting: its gradient stays well conditioned
    return h.sum()


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("fn,args", [
    (rnn_over_rows, [np.array([0.2, -0.1, 0.3, 0.05], np.float32), W4 * 0.6, U4 * 0.6, XS]),
    (reversed_rows, [np.array([0.2, -0.1, 0.3, 0.05], np.float32), W4 * 0.6, np.concatenate([XS, XS])]),
    (fixed_steps, [np.array([0.2, -0.1, 0.3, 0.05], np.float32), W4 * 0.6]),
], ids=["rnn_over_rows", "reversed_rows", "fixed_steps"])
def test_counted_loops_roll_to_their_traced_count_and_match_eager(fn, args, backend):
    f = tg.compile(fn, backend=backend)
    v1, g1 = grads(f, args)
    v2, g2 = grads(fn, args)
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
    if backend == "numpy":
        check_grads(f, [np.asarray(a, np.float64) for a in args], order=1, rtol=1e-4, atol=1e-6)
    assert all(t.counted for t in f.traces) and "rolled (its traced" in repr(f.traces[0])


def short_chain(x):
    for _ in range(50):  # 200 operations: straight-line code is faster here
        x = (x.sin() * 1.01 + 0.1).tanh()
    return x.sum()


def test_a_counted_loop_is_one_body_of_code_and_follows_the_shape():
    f = tg.compile(short_chain)
    grads(f, [np.array([0.5, -0.2], np.float32)])
    assert not f.traces[0].counted and "xp.tanh(" in f.traces[0].source
    f = tg.compile(rnn_over_rows)
    h, W, U = np.array([0.2, -0.1, 0.3, 0.05], np.float32), W4 * 0.6, U4 * 0.6
    code = f.code(*[tg.tensor(a, requires_grad=True) for a in (h, W, U, XS)])
    assert code.count("xp.tanh(") == 1 and "if not j < 300: break" in code and "getitem = xs[j]" in code
    for rows in (200, 300, 1000):  # another length is another shape: another trace, of the same size
        xs = rng.standard_normal((rows, 4)).astype(np.float32)
        v1, g1 = grads(f, [h, W, U, xs])
        v2, g2 = grads(rnn_over_rows, [h, W, U, xs])
        np.testing.assert_allclose(v1, v2, rtol=1e-5)
        for a, b in zip(g1, g2):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
    lines = {len(t.source.splitlines()) for t in f.traces if t.counted}
    assert len(lines) == 1, (lines, f.traces)  # the code does not grow with the length


def test_second_order_through_a_counted_loop():
    h = np.array([0.2, -0.1, 0.3, 0.05], np.float32)
    f = tg.compile(rnn_over_rows)
    results = []
    for g in (f, rnn_over_rows):
        W = tg.tensor(W4 * 0.6, requires_grad=True)
        (gw,) = tg.autograd.grad(g(tg.tensor(h), W, tg.tensor(U4 * 0.6), tg.tensor(XS[:250])), W, create_graph=True)
        (gg,) = tg.autograd.grad((gw * gw).sum(), W)
        results.append((gw.detach().numpy(), gg.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-4, atol=1e-5 * np.abs(results[1][1]).max())
    assert f.traces[0].counted


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_a_checkpointed_counted_loop_matches_eager(backend):
    args = [np.array([0.2, -0.1, 0.3, 0.05], np.float32), W4 * 0.6, U4 * 0.6, XS]
    f = tg.compile(rnn_over_rows, checkpoint=7, backend=backend)  # 300 = 42 stretches of 7, and 6
    v1, g1 = grads(f, args)
    v2, g2 = grads(rnn_over_rows, args)
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * max(np.abs(b).max(), 1.0))
    assert f.traces[0].counted


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_an_exported_checkpointed_counted_loop_runs_without_transgrad(tmp_path, backend):
    args = [np.array([0.2, -0.1, 0.3, 0.05], np.float32), W4 * 0.6, U4 * 0.6, XS]
    tg.export(tg.compile(rnn_over_rows, backend=backend, checkpoint=7),
              *[tg.tensor(a, requires_grad=True) for a in args], path=str(tmp_path / "counted.py"))
    value, want = grads(rnn_over_rows, args)
    for k, a in enumerate(args + want):
        np.save(tmp_path / f"a{k}.npy", a)
    code = ("import numpy as np, counted as m\n"
            f"a = [np.load({str(tmp_path)!r} + f'/a{{k}}.npy') for k in range(8)]\n"
            "v, g = m.value_and_grad(*a[:4])\n"
            f"assert abs(float(v) - {value!r}) <= 1e-5 * abs({value!r}), v\n"
            "for x, w in zip(g, a[4:]):\n"
            "    assert np.allclose(np.asarray(x), w, rtol=1e-4, atol=1e-5 * max(np.abs(w).max(), 1.0)), (x, w)\n"
            "print('ok')\n")
    run_without_transgrad(tmp_path, code)


def test_the_eager_backward_code_of_a_loop_stays_the_straight_line_record_of_its_run():
    h = tg.tensor(np.array([0.2, -0.1, 0.3, 0.05], np.float32), requires_grad=True)
    src = tg.backward_code(recurrence(h, tg.tensor(W4), tg.tensor(U4), tg.tensor(h.detach().numpy())))
    assert "while" not in src and "for " not in src
    assert src.count(" * 1.5\n") >= 2  # the step's gradient once per iteration it ran


# ---- `for t in range(n)` with n an argument: one program for every n ----------------------------------
XS_LONG = np.random.default_rng(11).standard_normal((150, 4)).astype(np.float32)  # not from `rng`: the tests above draw from it


def rnn_steps(xs, h, W, U, n):
    for t in range(n):
        h = (xs[t] @ W + h @ U).tanh() + h * 0.5
    return (h * h).sum()


def rnn_from_zeros(xs, W, U, n):
    h = tg.zeros(4)  # the first step reads a tensor that needs no gradient: it is peeled
    for t in range(n):
        h = (xs[t] @ W + h @ U).tanh()
    return (h * h).sum() + h.mean()


def jax_rnn_steps(xs, h, W, U, n):
    import jax.numpy as jnp

    for t in range(n):
        h = jnp.tanh(xs[t] @ W + h @ U) + h * 0.5
    return (h * h).sum()


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_a_range_bound_argument_is_one_program_for_every_count(backend):
    import jax

    f = tg.compile(rnn_steps, backend=backend)
    df = tg.grad(f, argnums=(1, 2, 3))
    h = np.array([0.2, -0.1, 0.3, 0.05], np.float32)
    W, U = W4 * 0.5, U4 * 0.5
    for n in (5, 0, 1, 2, 17, 70, 3, 140):  # 70 and 140 pass the 64 rows of the first JAX trace's buffers
        want = jax.grad(jax_rnn_steps, argnums=(1, 2, 3))(XS_LONG, h, W, U, n)  # the oracle: jax.grad of the loop
        for a, b in zip(df(XS_LONG, h, W, U, n), want):
            np.testing.assert_allclose(a.numpy(), np.asarray(b), rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(f(XS_LONG, h, W, U, n).item(), float(jax_rnn_steps(XS_LONG, h, W, U, n)), rtol=1e-5)
    info = f.cache_info()
    caps = sorted(c for t in f.traces for c in t.capacity.values())
    # a value trace and a gradient trace; on JAX the gradient's buffers hold 64 rows, then 256 from n = 70 on
    assert info.misses == 2 and info.retraces == (0 if backend == "numpy" else 1), (info, f.retrace_log)
    assert caps == ([] if backend == "numpy" else [64, 256])
    assert all("loop `for t in range(n):` at line" in repr(t) and "one program for every `n`" in repr(t)
               for t in f.traces)
    if backend == "numpy":  # float64 central differences, at counts the trace never saw
        for n in (4, 33):
            check_grads(lambda h, W, U: f(XS_LONG.astype(np.float64), h, W, U, n), [h, W, U], order=1,
                        rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_a_range_bound_loop_with_its_first_step_peeled_runs_from_one_step_on(backend):
    f = tg.compile(rnn_from_zeros, backend=backend)
    W, U = W4 * 0.5, U4 * 0.5
    for n in (6, 2, 11, 0, 1, 9):
        Wt, Ut = tg.tensor(W, requires_grad=True), tg.tensor(U, requires_grad=True)
        out = f(XS_LONG, Wt, Ut, n)
        assert out.requires_grad == (n > 0)  # no step: nothing to differentiate, as in eager
        if n:
            out.backward()
        We, Ue = tg.tensor(W, requires_grad=True), tg.tensor(U, requires_grad=True)
        ref = rnn_from_zeros(tg.tensor(XS_LONG), We, Ue, n)
        np.testing.assert_allclose(out.item(), ref.item(), rtol=1e-5)
        if n:
            ref.backward()
            np.testing.assert_allclose(Wt.grad.numpy(), We.grad.numpy(), rtol=2e-4, atol=1e-6)
            np.testing.assert_allclose(Ut.grad.numpy(), Ue.grad.numpy(), rtol=2e-4, atol=1e-6)
    rolled = [t for t in f.traces if t.loops]
    assert len(rolled) == 1 and "guard line" in repr(rolled[0]) and "for t in range(n):" in repr(rolled[0])
    # n = 0 fails the rolled trace's `n >= 1` and gets its own
    assert any("for t in range(n):" in m for m in f.retrace_log), f.retrace_log


def counts_in_python(xs, h, n):
    steps = 0
    for t in range(n):
        h = (h + xs[t]).tanh()
        steps += 1  # Python state the trace cannot see: n stays a guard
    return h.sum() / steps


def scaled_by_counter(h, n):
    for i in range(n):
        h = h * 0.5 + i  # the counter is a value: not a bound (the trace keys n)
    return h.sum()


def counter_after(xs, h, n):
    for t in range(n):
        h = (h + xs[t]).tanh()
    return h.sum() + t  # noqa: B023  the counter read after the loop: not a bound


RATES = [0.5] * 6 + [2.0] * 6


def python_list_rates(h, n):
    for t in range(n):
        h = h * RATES[t]  # a Python list: the trace sees 0.5 at the first six steps only
    return h.sum()


@pytest.mark.parametrize("fn,args", [
    (python_list_rates, lambda n: [np.full(4, 0.1, np.float32), n]),
    (counts_in_python, lambda n: [XS_LONG, np.full(4, 0.1, np.float32), n]),
    (scaled_by_counter, lambda n: [np.full(4, 0.1, np.float32), n]),
    (counter_after, lambda n: [XS_LONG, np.full(4, 0.1, np.float32), n]),
], ids=["list_indexed", "python_state", "counter_as_value", "counter_after"])
def test_range_loops_python_decides_stay_right(fn, args):
    f = tg.compile(fn)
    for n in (3, 7, 12, 5):  # 7 and 12 pass the sixth step
        got = f(*args(n))
        want = fn(*[tg.tensor(a) if isinstance(a, np.ndarray) else a for a in args(n)])
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-6)
    assert f.cache_info().size == 4  # one trace per n
    if fn is counts_in_python:
        assert (f"line {counts_in_python.__code__.co_firstlineno + 2} `for t in range(n):`: the cached trace looped 3 times, this input loops 7 times (the loop is "
                "not rolled: its iterations change Python values the trace does not see)") in f.retrace_log[0]


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_an_exported_range_bound_loop_takes_n_as_an_argument(tmp_path, backend):
    import jax

    h = np.array([0.2, -0.1, 0.3, 0.05], np.float32)
    args = [XS_LONG, h, W4 * 0.5, U4 * 0.5]
    tg.export(tg.compile(rnn_steps, backend=backend), XS_LONG, *[tg.tensor(a, requires_grad=True) for a in args[1:]], 5,
              path=str(tmp_path / "steps.py"))
    for k, a in enumerate(args):
        np.save(tmp_path / f"a{k}.npy", a)
    lines = ["import numpy as np, steps as m", f"a = [np.load({str(tmp_path)!r} + f'/a{{k}}.npy') for k in range(4)]"]
    for n in (0, 3, 40):  # the oracle: jax.grad of the loop, here; the exported code runs without transgrad
        v, g = jax.value_and_grad(jax_rnn_steps, argnums=(1, 2, 3))(*args, n)
        lines += [f"v, g = m.value_and_grad(*a, {n})", f"assert abs(float(v) - {float(v)!r}) <= 1e-5 * abs({float(v)!r})"]
        lines += [f"assert np.allclose(np.asarray(g[{i + 1}]), {np.asarray(x).tolist()!r}, rtol=2e-4, atol=2e-5), g"
                  for i, x in enumerate(g)]  # g[0]: the gradient of xs (every float argument is differentiated)
    run_without_transgrad(tmp_path, "\n".join(lines + ["print('ok')"]) + "\n")


def test_an_exported_loop_with_a_trace_for_no_trips_runs_every_count(tmp_path):
    # the n = 0 trace's guard read the count with `.item()`, which a Python int lacks: every call raised
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(12)
    xs, W, U = (rng.standard_normal(s).astype(np.float32) * 0.5 for s in ((6, 4), (4, 4), (4, 4)))
    f = tg.compile(rnn_from_zeros)  # its rolled trace holds for n >= 1 (the first step is peeled)
    for n in (6, 0):
        f(tg.tensor(xs, requires_grad=True), tg.tensor(W, requires_grad=True), tg.tensor(U, requires_grad=True), n)
    tg.export(f, tg.tensor(xs), tg.tensor(W), tg.tensor(U), 6, path=str(tmp_path / "rnn.py"))
    for name, a in (("xs", xs), ("W", W), ("U", U)):
        np.save(tmp_path / f"{name}.npy", a)

    def oracle(xs, W, U, n):
        h = jnp.zeros(4)
        for t in range(n):
            h = jnp.tanh(xs[t] @ W + h @ U)
        return (h * h).sum() + h.mean()

    lines = ["import numpy as np, rnn", "a = [np.load(f'{k}.npy') for k in ('xs', 'W', 'U')]"]
    for n in (0, 1, 6, 4):
        v, g = jax.value_and_grad(oracle, argnums=(0, 1, 2))(xs, W, U, n)
        lines += [f"v, g = rnn.value_and_grad(*a, {n})", f"assert np.isclose(float(v), {float(v)!r}, rtol=1e-5)"]
        lines += [f"assert np.allclose(g[{i}], {np.asarray(x).tolist()!r}, rtol=1e-4, atol=1e-6), g" for i, x in enumerate(g)]
    run_without_transgrad(tmp_path, "\n".join(lines + ["print('ok')"]) + "\n")


# ---- long loops: the first call traces a few iterations (NOTE [fast forward]) ------------------------
def creep(x):
    y = x + 2
    while y.norm() < 1e4:
        y = y * 1.001
    return (y * y).sum()


def creep_then_decide(x, limit):
    y = x + 2
    while y.norm() < 1e4:
        y = y * 1.001
    if y.sum() > limit:  # decided on the values after the loop: wrong if traced where the loop was cut
        y = y * 3
    return (y * y).sum()


def creep_then_assert(x):
    y = x + 2
    while y.norm() < 1e4:
        y = y * 1.001
    assert bool(y.norm() >= 1e4), "only true after the whole loop"
    return y.sum()


def creep_keeping_the_previous(x):
    y = prev = x + 2
    while y.norm() < 1e4:
        prev = y
        y = y * 1.001
    return (y * prev).sum()  # reads the last iteration's input too: the loop does not roll


def creep_steps(x):
    """(steps, the factor 1.001 ** steps) as float32 arithmetic does it."""
    y, k = np.asarray(x, np.float32) + np.float32(2), 0
    while np.linalg.norm(y) < 1e4:
        y, k = y * np.float32(1.001), k + 1
    return k, y / (np.asarray(x, np.float32) + 2)


@pytest.mark.parametrize("fn,extra", [(creep, []), (creep_then_decide, [5.0]), (creep_then_decide, [1e4]),
                                      (creep_then_assert, []), (creep_keeping_the_previous, [])],
                         ids=["creep", "decides_as_at_the_cut", "decides_otherwise", "assert", "keeps_previous"])
def test_a_long_loop_is_traced_a_few_iterations_and_stays_right(fn, extra):
    x = np.array([1.0, -0.5, 2.0], np.float32)
    k, factor = creep_steps(x)
    assert k > 4000  # thousands of iterations, of which the first trace records a few
    f = tg.compile(fn)
    before = list(f.traces)  # traces are shared per code object
    xt = tg.tensor(x, requires_grad=True)
    out = f(xt, *extra)
    out.backward()
    y = (x.astype(np.float64) + 2) * factor
    scale = 3.0 if fn is creep_then_decide and y.sum() > extra[0] else 1.0  # closed forms, at the real count
    if fn is creep_then_assert:
        want_value, want_grad = y.sum(), factor
    elif fn is creep_keeping_the_previous:
        want_value, want_grad = (y * y / 1.001).sum(), 2 * y * factor / 1.001
    else:
        want_value, want_grad = (scale * y) @ (scale * y), 2 * scale * scale * y * factor
    np.testing.assert_allclose(out.item(), want_value, rtol=1e-4)
    np.testing.assert_allclose(xt.grad.numpy(), want_grad, rtol=1e-3)  # float32 products of thousands of steps
    (tr,) = [t for t in f.traces if t not in before]
    guess_stands = fn is creep or (fn is creep_then_decide and extra[0] == 5.0)  # the sum is 8.5 at the cut
    assert tr.fast_forwarded == guess_stands and len(tr.guards) <= (50 if guess_stands else k + 3)
    assert bool(tr.loops) == (fn is not creep_keeping_the_previous)


def test_a_negative_or_huge_count_is_an_ordinary_int_argument():
    f = tg.compile(rnn_steps)
    h = np.array([0.2, -0.1, 0.3, 0.05], np.float32)
    for n in (5, -2, 3, 2 ** 31):  # range(-2) is empty; 2 ** 31 does not fit the program's int32 (never runs here)
        if n == 2 ** 31:
            assert not f._bound(4, n, False)
            continue
        want = float(jax_rnn_steps(XS_LONG, h, W4 * 0.5, U4 * 0.5, n))
        np.testing.assert_allclose(f(XS_LONG, h, W4 * 0.5, U4 * 0.5, n).item(), want, rtol=1e-5)
    heads = [repr(t).splitlines()[0] for t in f.traces]  # traces are shared per code object
    assert any("n: int32[]" in h for h in heads) and any("n: int32[]" not in h for h in heads)  # -2: a key
