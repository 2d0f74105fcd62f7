"""Hostile and extreme input: colliding names, deep graphs, runaway loops, NaN, threads."""
import gc
import os
import threading
import weakref

import numpy as np
import pytest

import transgrad as tg
from transgrad import trace

import hostile_functions as hf
from test_compile import loop_trips
import compiled_functions as cf


def closed_form(a, b):
    # value = sum(2 (sin(a b) + a)); d/da = 2 (cos(ab) b + 1); d/db = 2 cos(ab) a
    return (2 * (np.sin(a * b) + a)).sum(), 2 * (np.cos(a * b) * b + 1), 2 * np.cos(a * b) * a


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_user_names_that_collide_with_generated_ones(backend):
    a, b = np.array([0.5, -1.0], np.float32), np.array([2.0, 0.25], np.float32)
    value, (ga, gb) = tg.value_and_grad(hf.colliding, argnums=(0, 1), backend=backend)(a, b)
    want, wa, wb = closed_form(a.astype(np.float64), b.astype(np.float64))
    assert value.item() == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(ga.numpy(), wa, rtol=1e-5)
    np.testing.assert_allclose(gb.numpy(), wb, rtol=1e-5)
    code = tg.value_and_grad(hf.colliding, argnums=(0, 1), backend=backend).code(a, b)
    from transgrad.backends import get_backend

    for reserved in ("xp", "sum") + get_backend(backend).HELPERS:
        assert f"\n    {reserved} = " not in code, reserved  # renamed, never shadowed


def test_eager_backward_with_colliding_names():
    a = tg.tensor([0.5, -1.0], requires_grad=True)
    b = tg.tensor([2.0, 0.25], requires_grad=True)
    hf.colliding(a, b).backward()
    _, wa, wb = closed_form(np.array([0.5, -1.0]), np.array([2.0, 0.25]))
    np.testing.assert_allclose(a.grad.numpy(), wa, rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), wb, rtol=1e-5)


def test_a_100000_op_chain_runs_backward_without_recursion_error():
    x = tg.tensor([0.1, 0.2], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.00001 ** 100_000] * 2, rtol=1e-3)


def test_runaway_loop_stops_at_the_trace_length_limit(monkeypatch):
    monkeypatch.setattr(trace.tracer, "MAX_TRACE_LENGTH", 2000)
    f = tg.compile(hf.runaway)
    with pytest.raises(trace.TraceError, match=r"trace exceeded 2000 operations \(last at .*hostile_functions.py:1[56]\)"):
        f(tg.ones(2))
    assert f.cache_info().size == 0


def test_saved_tensors_and_user_tensors_are_released():
    f = tg.compile(cf.tutorial)
    x = tg.ones(2, 2, requires_grad=True)
    out = f(x)
    out.backward()
    out2 = f(tg.ones(2, 2, requires_grad=True))
    ref_x, ref_out = weakref.ref(x), weakref.ref(out2)
    del x, out, out2
    gc.collect()
    assert ref_x() is None and ref_out() is None  # the compiled cache holds no user tensors
    assert f.cache_info().size == 1


def test_nan_and_inf_propagate_as_ieee():
    x = tg.tensor([np.nan, np.inf, -np.inf, 1.0], requires_grad=True)
    y = (x * 2).exp()
    y.sum().backward()
    g = x.grad.numpy()  # d/dx exp(2x) = 2 exp(2x)
    assert np.isnan(g[0]) and np.isposinf(g[1]) and g[2] == 0.0 and g[3] == pytest.approx(2 * np.exp(2.0))
    f = tg.compile(cf.tutorial_loop)
    out = f(tg.tensor([np.nan, 1.0, 1.0]))  # norm is NaN: the loop test is False at once
    assert np.isnan(out.numpy()[0]) and out.numpy()[1] == 2.0
    g = tg.compile(cf.item_arithmetic)
    assert np.isnan(g(tg.tensor([np.nan, 1.0])).item())
    info = g.cache_info()  # the NaN guard holds: the second call is a hit
    assert np.isnan(g(tg.tensor([np.nan, 1.0])).item()) and g.cache_info()[:3] == (info.hits + 1, info.misses, 0)


CALLS = int(os.environ.get("TRANSGRAD_STRESS_CALLS", "100"))  # per thread; 1000 for the full stress run


def test_eight_threads_mixed_paths():
    f = tg.compile(cf.tutorial_loop, cache_size=64)
    df = tg.grad(lambda x: cf.tutorial_loop(x).sum(), backend="numpy")
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for _ in range(CALLS):
            x0 = (rng.standard_normal(3) * 10.0 ** rng.integers(-1, 3)).astype(np.float32)
            k = loop_trips(x0)
            y = f(tg.tensor(x0)).numpy()
            g = df(x0).numpy()
            if not (np.allclose(y, x0 * 2.0 ** (k + 1), rtol=1e-6) and np.allclose(g, 2.0 ** (k + 1))):
                errors.append(x0)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    info = f.cache_info()
    assert info.hits + info.misses + info.retraces == 8 * CALLS
