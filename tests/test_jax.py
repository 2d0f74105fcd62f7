"""The JAX backend: parity with NumPy on every op-table row and every compiled test
function, guards checked on the host, vmap, sharding, float64 policy."""
import os
import random
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import transgrad as tg

import compiled_functions as cf
from op_specs import cases, sample
from standalone import run_without_transgrad
from test_compile import loop_trips

GRAD_CASES = [c for c in cases() if c[1].grad]
ALL_CASES = list(cases())


@pytest.mark.parametrize("name,spec,shapes", ALL_CASES, ids=[c[0] for c in ALL_CASES])
def test_eager_forward_on_jax_arrays_matches_numpy(name, spec, shapes):
    args = sample(spec, shapes, np.random.default_rng(0), np.float32)
    want = spec.fn(*[tg.tensor(a) for a in args])
    if not args:  # a constructor: nothing of JAX's to run on
        return
    if want.dtype == tg.float64:  # JAX without x64 cannot hold it: a clear error, not a silent float32
        with pytest.raises(TypeError, match="jax_enable_x64"):
            spec.fn(*[tg.tensor(jnp.asarray(a)) for a in args])
        return
    got = spec.fn(*[tg.tensor(jnp.asarray(a)) for a in args])
    # JAX without x64 computes integers as int32 (indices, argmax), floats keep their dtype
    assert got.dtype == want.dtype or (want.dtype == tg.int64 and got.dtype == tg.int32)
    assert type(got.array).__module__.startswith("jax")
    np.testing.assert_allclose(np.asarray(got.array), want.numpy(), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name,spec,shapes", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_compiled_gradients_match_numpy_backend(name, spec, shapes):
    rng = np.random.default_rng(1)
    args = sample(spec, shapes, rng, np.float32)
    v = rng.standard_normal(np.shape(spec.ref(*args))).astype(np.float32)
    if spec.fn(*[tg.tensor(a) for a in args]).dtype == tg.float64:
        with pytest.raises(TypeError, match="jax_enable_x64"):
            tg.grad(lambda *xs: spec.fn(*xs).sum(), backend="jax")(*[jnp.asarray(a) for a in args])
        return

    def loss(*xs):
        return (spec.fn(*xs) * tg.tensor(v)).sum()

    argnums = tuple(range(len(args)))
    value_np, grads_np = tg.value_and_grad(loss, argnums=argnums)(*args)
    value_jx, grads_jx = tg.value_and_grad(loss, argnums=argnums, backend="jax")(*[jnp.asarray(a) for a in args])
    assert type(value_jx.array).__module__.startswith("jax")
    np.testing.assert_allclose(np.asarray(value_jx.array), value_np.numpy(), rtol=1e-5, atol=1e-5)
    for gn, gj in zip(grads_np, grads_jx):
        np.testing.assert_allclose(np.asarray(gj.array), gn.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loops", ["roll", "unroll"])
def test_tutorial_loop_on_jax_in_shuffled_order(loops):
    f = tg.compile(cf.tutorial_loop, backend="jax", cache_size=64, loops=loops)
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal(3).astype(np.float32) * s for s in (0.01, 1.0, 100.0) for _ in range(3)]
    v = np.array([0.1, 1.0, 0.0001], np.float32)
    for rnd in range(2):
        random.Random(rnd).shuffle(inputs)
        for x0 in inputs:
            k = loop_trips(x0)
            x = tg.tensor(jnp.asarray(x0), requires_grad=True)
            y = f(x)
            np.testing.assert_allclose(np.asarray(y.array), x0 * 2.0 ** (k + 1), rtol=1e-6)
            y.backward(tg.tensor(jnp.asarray(v)))
            assert type(x.grad.array).__module__.startswith("jax")  # the backward stayed on the device
            np.testing.assert_allclose(x.grad.numpy(), v * 2.0 ** (k + 1), rtol=1e-6)
    info = f.cache_info()
    if loops == "roll":  # one XLA program for every trip count
        assert info.size == 1 and info.retraces == 0 and f.traces[0].loops, info
    else:
        assert info.size == len({loop_trips(x0) for x0 in inputs}) and info.retraces == info.size - 1


@pytest.mark.parametrize("fn,argnums,shapes", [
    (cf.tutorial, 0, [(2, 2)]), (cf.branch, 0, [(3,)]), (cf.nested_loops, 0, [(2,)]),
    (cf.item_arithmetic, 0, [(2,)]), (cf.mlp, (1, 2), [(8, 5), (5, 4), (4, 3)])])
def test_compiled_functions_match_numpy_backend(fn, argnums, shapes):
    rng = np.random.default_rng(3)
    for _ in range(3):
        lo = 0.2 if fn is cf.nested_loops else -1.0  # nested_loops terminates for positive inputs
        args = [rng.uniform(lo, 1, s).astype(np.float32) for s in shapes]
        vn, gn = tg.value_and_grad(fn, argnums=argnums)(*args)
        vj, gj = tg.value_and_grad(fn, argnums=argnums, backend="jax")(*args)
        np.testing.assert_allclose(vj.numpy(), vn.numpy(), rtol=1e-5, atol=1e-6)
        for a, b in zip(gj if isinstance(gj, tuple) else (gj,), gn if isinstance(gn, tuple) else (gn,)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_guard_mismatch_discards_and_retraces():
    f = tg.compile(cf.branch, backend="jax")
    assert f(jnp.array([1.0, 2.0])).item() == 5.0
    assert f(jnp.array([-1.0, -2.0])).item() == 9.0  # the first trace's guard fails on the host
    assert f.cache_info()[:3] == (0, 1, 1)
    assert f(jnp.array([2.0, 2.0])).item() == 8.0
    assert "took True, this input takes False" in f.retrace_log[0]


def test_jax_source_is_shown_and_uses_jax_numpy():
    code = tg.compile(cf.tutorial_loop, backend="jax").code(jnp.ones(3))
    assert "xp.sqrt(xp.sum(" in code and "GuardFailed" not in code  # guards are outputs, not raises
    assert code.rstrip().endswith(")") and "return (" in code


def test_vmap_gives_per_example_gradients():
    df = tg.grad(lambda w, x: ((x * w).tanh()).sum(), backend="jax")
    w = jnp.array([0.5, -1.0, 2.0])
    xs = jnp.asarray(np.random.default_rng(4).standard_normal((5, 3)), jnp.float32)
    per_example = jax.vmap(df, in_axes=(None, 0))(w, xs)
    want = np.asarray(xs) * (1 - np.tanh(np.asarray(xs) * np.asarray(w)) ** 2)
    np.testing.assert_allclose(np.asarray(per_example.array), want, rtol=1e-5, atol=1e-6)


def test_vmap_of_data_dependent_code_is_a_clear_error():
    df = tg.grad(lambda x: (x * x).sum() if (x.sum() > 0) else x.sum(), backend="jax")
    with pytest.raises(tg.trace.TraceError, match="abstract here"):
        jax.vmap(df)(jnp.ones((2, 3)))


def test_float64_needs_x64():
    f = tg.compile(lambda x: (x * 2).sum(), backend="jax")
    with pytest.raises(TypeError, match="jax_enable_x64"):
        f(np.ones(3))


def test_numpy_and_jax_inputs_mix():
    f = tg.compile(lambda x, w: (x @ w).sum(), backend="jax")
    out = f(np.ones((2, 3), np.float32), jnp.ones(3))
    assert out.item() == 6.0 and type(out.array).__module__.startswith("jax")


def test_to_device_and_back():
    t = tg.ones(3).to("jax")
    assert type(t.array).__module__.startswith("jax") and t.device == jax.devices()[0]
    assert t.block_until_ready() is t
    back = t.to("numpy")
    assert isinstance(back.array, np.ndarray) and back.device == "cpu"


def test_export_for_jax_is_jittable(tmp_path):
    path = tmp_path / "jexport.py"
    tg.export(tg.grad(cf.tutorial, backend="jax"), jnp.ones((2, 2)), path=str(path))
    code = ("import jax, jax.numpy as jnp, jexport as m\n"
            "value, g = m.value_and_grad(jnp.full((2, 2), 2.0))\n"
            "assert float(value) == 48.0 and jnp.allclose(g, 6.0), (value, g)\n"
            "v2, g2 = jax.jit(m.value_and_grad_0)(jnp.full((2, 2), 2.0))\n"
            "assert jnp.allclose(g2, 6.0)\n"
            "print('ok')\n")
    run_without_transgrad(tmp_path, code)


SHARDING = """
import numpy as np, jax, jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import transgrad as tg
assert len(jax.devices()) == 4
def loss(w, x, y):
    return (((x @ w).tanh() - y) ** 2).mean()
rng = np.random.default_rng(0)
w = jnp.asarray(rng.standard_normal((5, 3)), jnp.float32)
x = rng.standard_normal((64, 5)).astype(np.float32)
y = rng.standard_normal((64, 3)).astype(np.float32)
mesh = Mesh(np.array(jax.devices()), ("data",))
xs = jax.device_put(x, NamedSharding(mesh, P("data")))
ys = jax.device_put(y, NamedSharding(mesh, P("data")))
vg = tg.value_and_grad(loss, backend="jax")
v1, g1 = vg(w, jnp.asarray(x), jnp.asarray(y))
v4, g4 = vg(w, xs, ys)
np.testing.assert_allclose(np.asarray(g4.array), np.asarray(g1.array), rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(float(v4.item()), float(v1.item()), rtol=1e-6)
f = tg.compile(lambda x: (x * 2).tanh(), backend="jax")
out = f(xs)
assert len(out.array.sharding.device_set) == 4, out.array.sharding
print("ok")
"""


def test_data_parallel_over_four_devices_in_a_subprocess():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", SHARDING], capture_output=True, text=True, env=env)
    assert r.stdout.strip().endswith("ok"), r.stderr


def test_data_parallel_example_trains_across_devices():
    code = ("import sys; sys.path.insert(0, 'examples')\n"
            "import data_parallel\n"
            "losses, accuracy = data_parallel.main(steps=60)\n"
            "assert losses[-1] < 0.5 * losses[0] and accuracy > 0.85, (losses[0], losses[-1], accuracy)\n"
            "print('ok')\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
    assert r.stdout.strip().endswith("ok") and "over 2 device(s)" in r.stdout, r.stderr


X64 = """
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
import transgrad as tg
x = np.array([0.1, 0.2, 0.3])
value, g = tg.value_and_grad(lambda x: (x.sin() * x).sum(), backend="jax")(x)
assert g.dtype == tg.float64 and value.dtype == tg.float64
np.testing.assert_allclose(np.asarray(g.array), np.sin(x) + x * np.cos(x), rtol=1e-14)
print("ok")
"""


def test_float64_runs_when_x64_is_on():
    r = subprocess.run([sys.executable, "-c", X64], capture_output=True, text=True)
    assert r.stdout.strip() == "ok", r.stderr


def test_device_option_places_the_computation():
    device = jax.devices()[-1]
    f = tg.compile(lambda x: (x * 2).sum(), backend="jax", device=device)
    out = f(np.ones(3, np.float32))
    assert out.item() == 6.0 and out.device == device


# ---- tracing runs on NumPy copies (NOTE [host tracing]) ---------------------------------------------
class XlaCompilations:
    """Counts XLA compilations while it is open."""

    def __enter__(self):
        self.n = 0
        jax.monitoring.register_event_duration_secs_listener(self.event)
        return self

    def event(self, name, secs, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            self.n += 1

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self.event)


def padded_rnn(xs, length, h, W, U):
    t = length * 0
    while (t < length) & (h.norm() < 50):
        h = (xs[t] @ W + h @ U).tanh() * 0.5 + h
        t = t + 1
    return (h * h).sum()


def test_tracing_compiles_nothing_on_the_side_one_program_for_every_length():
    rng = np.random.default_rng(7)
    xs = jnp.asarray(rng.standard_normal((23, 5)).astype(np.float32))  # shapes no other test compiles for
    W, U = (jnp.asarray(rng.standard_normal((5, 5)).astype(np.float32) * 0.4) for _ in range(2))
    h = jnp.asarray(rng.standard_normal(5).astype(np.float32) * 0.1)
    g = tg.grad(padded_rnn, argnums=(2, 3, 4), backend="jax")
    lengths = [3, 17, 9, 22, 5]
    arrays = [jnp.asarray(np.int32(n)) for n in lengths]
    with XlaCompilations() as c:
        got = [g(xs, n, h, W, U) for n in arrays]
    assert c.n == 1  # forward and backward together, for every length; tracing compiled nothing
    for n, grads in zip(lengths, got):
        def ref(h, W, U):  # the loop in jax.numpy, differentiated by jax.grad
            for t in range(n):
                if not jnp.linalg.norm(h) < 50:
                    break
                h = jnp.tanh(xs[t] @ W + h @ U) * 0.5 + h
            return (h * h).sum()

        for a, b in zip(grads, jax.grad(ref, argnums=(0, 1, 2))(h, W, U)):
            np.testing.assert_allclose(np.asarray(a.array), b, rtol=2e-4, atol=1e-5)


def tanh_mlp(x, params):
    h = x
    for W, b in params:
        h = (h @ W + b).tanh()
    return (h * h).mean()


def jnp_tanh_mlp(x, params):
    h = x
    for W, b in params:
        h = jnp.tanh(h @ W + b)
    return jnp.mean(h * h)


def test_loss_backward_compiles_one_program_for_forward_and_backward():
    # NOTE [gradient with the forward]: `loss = f(...); loss.backward()` on XLA
    rng = np.random.default_rng(11)
    x = jnp.asarray(rng.standard_normal((7, 6)).astype(np.float32))  # shapes no other test compiles for
    ws = [(rng.standard_normal((6, 9)) * 0.5, rng.standard_normal(9) * 0.1),
          (rng.standard_normal((9, 3)) * 0.5, rng.standard_normal(3) * 0.1)]
    ws = [tuple(jnp.asarray(a.astype(np.float32)) for a in layer) for layer in ws]
    params = [tuple(tg.tensor(a, requires_grad=True) for a in layer) for layer in ws]
    flat = [p for layer in params for p in layer]
    want = [g for layer in jax.grad(jnp_tanh_mlp, argnums=1)(x, ws) for g in layer]

    def check(scale):
        for p, w in zip(flat, want):
            np.testing.assert_allclose(np.asarray(p.grad.array), np.asarray(w) * scale, rtol=2e-5, atol=1e-7)
            p.grad = None

    f = tg.compile(tanh_mlp, backend="jax")
    with XlaCompilations() as c:
        loss = f(x, params)
        loss.backward()
        jax.block_until_ready([p.grad.array for p in flat])
    assert c.n == 1  # forward and backward in one program
    np.testing.assert_allclose(loss.item(), jnp_tanh_mlp(x, ws), rtol=1e-6)
    check(1.0)
    f(x, params).backward(tg.tensor(2.5))  # another seed: the generated backward multiplies by it
    check(2.5)
    (f(x, params) * -3).backward()  # a cotangent from eager operations after the call
    check(-3.0)
    with tg.no_grad():  # the forward alone
        out = f(x, params)
    assert not out.requires_grad and out.item() == pytest.approx(float(jnp_tanh_mlp(x, ws)), rel=1e-6)
    W0 = flat[0]  # second order: the gradients the forward computed have a history
    (g,) = tg.autograd.grad(f(x, params), [W0], create_graph=True)
    (g * g).sum().backward()
    def ref(W):
        g = jax.grad(jnp_tanh_mlp, argnums=1)(x, [(W, ws[0][1]), ws[1]])[0][0]
        return jnp.sum(g * g)
    np.testing.assert_allclose(np.asarray(W0.grad.array), jax.grad(ref)(ws[0][0]), rtol=2e-4, atol=1e-7)


def mixed_dtypes(x, k):
    return (x * k + k.sum()).sum() * x.mean()


def test_traced_values_take_jax_dtypes():
    x, k = jnp.arange(4, dtype=jnp.float32), jnp.arange(4, dtype=jnp.int32)
    f = tg.compile(mixed_dtypes, backend="jax")
    got, want = f(x, k), mixed_dtypes(tg.tensor(x), tg.tensor(k))  # eager on JAX arrays
    assert got.dtype == want.dtype == tg.float32 and got.item() == want.item()
    with pytest.raises(TypeError, match="jax_enable_x64"):
        tg.compile(lambda x: x.astype(tg.float64).sum(), backend="jax")(x)


def test_arguments_sharing_one_gradient_in_the_forward():
    # d/dx and d/dw of sum(x + w) are one value: the forward that computes them returns it once
    # (NOTE [gradient with the forward]); before, its backward took it twice and did not compile
    f = tg.compile(lambda x, w, b: (x + w).sum() + (b * b).sum(), backend="jax")
    b0 = np.array([0.5, -2.0], np.float32)
    for seed in (None, 2.5, -3.0):
        x, w, b = (tg.tensor(a, requires_grad=True) for a in (np.ones(3, np.float32), np.zeros(3, np.float32), b0))
        out = f(x, w, b)
        if seed is None:
            out.backward()
        elif seed > 0:
            out.backward(tg.tensor(np.float32(seed)))
        else:
            (out * seed).backward()  # through the engine
        s = 1.0 if seed is None else seed
        for t, want in ((x, np.full(3, s)), (w, np.full(3, s)), (b, 2 * s * b0)):
            np.testing.assert_allclose(np.asarray(t.grad.array), want, rtol=1e-6)
