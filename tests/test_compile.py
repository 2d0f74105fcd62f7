"""@tg.compile, tg.grad and tg.value_and_grad against closed forms and eager transgrad."""
import os
import random
import subprocess
import sys
import warnings

import numpy as np
import pytest

import transgrad as tg
from transgrad.trace import TraceError

import compiled_functions as cf
from standalone import run_without_transgrad


def loop_trips(x0):
    """The oracle for the tutorial loop: doublings after the first, from the input alone."""
    k = 0
    while np.linalg.norm(x0.astype(np.float64) * 2.0 ** (k + 1)) < 1000:
        k += 1
    return k


def test_tutorial_compiled():
    f = tg.compile(cf.tutorial)
    x = tg.ones(2, 2, requires_grad=True)
    out = f(x)
    assert out.item() == 27.0
    out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 2), 4.5))
    value, g = tg.value_and_grad(f)(tg.ones(2, 2))
    assert value.item() == 27.0
    np.testing.assert_array_equal(g.numpy(), np.full((2, 2), 4.5))


@pytest.mark.parametrize("loops", ["roll", "unroll"])
def test_tutorial_loop_many_inputs_in_shuffled_order(loops):
    f = tg.compile(cf.tutorial_loop, cache_size=64, loops=loops)
    df = tg.grad(lambda x, v: (cf.tutorial_loop(x) * v).sum())
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(3).astype(np.float32) * s for s in (0.01, 0.1, 1, 10, 100) for _ in range(4)]
    v = np.array([0.1, 1.0, 0.0001], np.float32)
    for rnd in range(2):
        random.Random(rnd).shuffle(inputs)
        for x0 in inputs:
            k = loop_trips(x0)
            x = tg.tensor(x0, requires_grad=True)
            y = f(x)
            np.testing.assert_allclose(y.detach().numpy(), x0 * 2.0 ** (k + 1), rtol=1e-6)
            y.backward(tg.tensor(v))
            np.testing.assert_allclose(x.grad.numpy(), v * 2.0 ** (k + 1), rtol=1e-6)
            np.testing.assert_allclose(df(tg.tensor(x0), tg.tensor(v)).numpy(), v * 2.0 ** (k + 1), rtol=1e-6)
    trips = {loop_trips(x0) for x0 in inputs}
    info = f.cache_info()
    if loops == "roll":  # NOTE [loops]: one program for every trip count
        assert info.size == 1 and info.misses == 1 and info.retraces == 0 and info.hits == 2 * len(inputs) - 1
        return
    assert info.size == len(trips) and info.misses == 1 and info.retraces == len(trips) - 1
    assert info.hits == 2 * len(inputs) - len(trips)


def test_branches_take_the_right_trace():
    f = tg.compile(cf.branch)
    for x0 in ([1.0, 2.0], [-1.0, -2.0], [3.0, -1.0], [-3.0, 1.0]):
        x = tg.tensor(x0, requires_grad=True)
        out = f(x)
        a = np.array(x0)
        want, grad = ((a * a).sum(), 2 * a) if a.sum() > 0 else (-a.sum() * 3, np.full(2, -3.0))
        assert out.item() == pytest.approx(want)
        out.backward()
        np.testing.assert_allclose(x.grad.numpy(), grad)
    assert f.cache_info().size == 2 and f.cache_info().hits == 2


def test_nested_loops_on_values():
    f = tg.compile(cf.nested_loops)
    df = tg.grad(cf.nested_loops)
    for x0 in ([0.5, 1.0], [1.5, 0.2], [0.3, 0.3], [0.5, 1.0]):
        x = np.array(x0, np.float32)
        eager = cf.nested_loops(tg.tensor(x, requires_grad=True))
        np.testing.assert_allclose(f(tg.tensor(x)).item(), eager.item(), rtol=1e-6)
        # closed form: total = sum over the visited (i, j) of (i + j) * sum(x), so d/dx = that count
        xt = tg.tensor(x, requires_grad=True)
        cf.nested_loops(xt).backward()
        np.testing.assert_allclose(df(tg.tensor(x)).numpy(), xt.grad.numpy(), rtol=1e-6)
        assert np.allclose(xt.grad.numpy(), xt.grad.numpy()[0])  # the same for every element


def test_item_in_arithmetic():
    f = tg.compile(cf.item_arithmetic)
    for x0 in ([1.0, 2.0], [0.5, -3.0], [1.0, 2.0]):
        x = tg.tensor(x0, requires_grad=True)
        out = f(x)
        s = sum(x0)
        assert out.item() == pytest.approx(s * s + s)
        out.backward()  # .item() is a constant for autograd, as in PyTorch: d/dx (x * s) = s
        np.testing.assert_allclose(x.grad.numpy(), [s, s])
    assert f.cache_info().size == 2  # two distinct values of the item, each a guard


def test_cache_hit_runs_only_generated_code():
    calls = []

    @tg.compile
    def f(x):
        calls.append(1)
        return (x * 3).sum()

    for _ in range(5):
        assert f(tg.ones(3)).item() == 9.0
    assert len(calls) == 1 and f.cache_info() == (4, 1, 0, 1)


def test_cache_bound_warns_once_and_stays_correct():
    f = tg.compile(cf.tutorial_loop, cache_size=2, loops="unroll")  # a trace per trip count
    scales = [0.01, 0.1, 1.0, 10.0, 100.0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for s in scales:
            x0 = np.array([s, -s, s], np.float32)
            np.testing.assert_allclose(f(tg.tensor(x0)).numpy(), x0 * 2.0 ** (loop_trips(x0) + 1), rtol=1e-6)
    msgs = [str(w.message) for w in caught if "cache_size" in str(w.message)]
    assert len(msgs) == 1
    assert "line 15" in msgs[0] and "keeps changing" in msgs[0]
    assert f.cache_info().size == 2


def test_retrace_is_explained():
    f = tg.compile(cf.tutorial_loop, loops="unroll")
    f(tg.tensor([1.0, 1.0, 1.0]))
    f(tg.tensor([100.0, 0.0, 0.0]))
    k1, k2 = loop_trips(np.ones(3)), loop_trips(np.array([100.0, 0, 0]))
    assert f.retrace_log == [
        f"line 15 `while y.data.norm() < 1000:`: the cached trace looped {k1} times, this input loops {k2} times"]
    text = repr(f.traces[1])
    assert f"True {k1} times, then False (looped {k1} times)" in text


def test_generated_code_uses_the_users_names_and_lines():
    code = tg.compile(cf.tutorial).code(tg.ones(2, 2, requires_grad=True))
    assert "z = mul * 3" in code and "y = x + 2" in code and "out = mean(z" in code
    assert "def tutorial_backward(g_out, y):" in code  # the forward saves only y for the backward
    assert "return (out, y)" in code
    assert "# z = y * y * 3  [compiled_functions.py:8]" in code
    assert "# grad of: y = x + 2  [compiled_functions.py:7]" in code


def test_golden_compiled_tutorial():
    from test_codegen import check_golden

    f = tg.compile(cf.tutorial)
    check_golden("compiled_tutorial", f.code(tg.ones(2, 2, requires_grad=True)))
    check_golden("compiled_tutorial_grad", tg.grad(cf.tutorial).code(tg.ones(2, 2)))


def test_grad_argnums_numpy_and_scalar_inputs():
    def f(x, w, b):
        return ((x @ w) * b).sum()

    x, w = np.arange(6.0, dtype=np.float32).reshape(2, 3), np.ones((3, 2), np.float32)
    gx, gw, gb = tg.grad(f, argnums=(0, 1, 2))(x, w, 2.0)
    np.testing.assert_allclose(gx.numpy(), 2 * w.sum(1) * np.ones((2, 3)))
    np.testing.assert_allclose(gw.numpy(), 2 * x.sum(0)[:, None] * np.ones((3, 2)))
    assert gb.item() == pytest.approx((x @ w).sum())
    value, gw_only = tg.value_and_grad(f, argnums=1)(x, w, 2.0)
    assert isinstance(value, tg.Tensor) and value.item() == pytest.approx(2 * (x @ w).sum())
    np.testing.assert_allclose(gw_only.numpy(), gw.numpy())


def test_grad_of_unused_argument_is_zero():
    g = tg.grad(lambda x, y: (x * 2).sum(), argnums=(0, 1))(tg.ones(2), tg.ones(3))
    np.testing.assert_array_equal(g[1].numpy(), np.zeros(3))


def test_second_derivatives_compose():
    d2 = tg.grad(lambda x: tg.grad(lambda y: (y.sin() * y).sum())(x).sum())
    x0 = np.array([0.3, 1.2], np.float32)
    # d/dx (sin x + x cos x) = 2 cos x - x sin x
    np.testing.assert_allclose(d2(tg.tensor(x0)).numpy(), 2 * np.cos(x0) - x0 * np.sin(x0), rtol=1e-5)


def test_mlp_grads_match_eager():
    rng = np.random.default_rng(0)
    x, w1, w2 = (rng.standard_normal(s).astype(np.float32) for s in ((8, 5), (5, 4), (4, 3)))
    g1, g2 = tg.grad(cf.mlp, argnums=(1, 2))(x, w1, w2)
    t1, t2 = tg.tensor(w1, requires_grad=True), tg.tensor(w2, requires_grad=True)
    cf.mlp(tg.tensor(x), t1, t2).backward()
    np.testing.assert_allclose(g1.numpy(), t1.grad.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g2.numpy(), t2.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_captured_tensors_are_read_at_every_call():
    w = tg.tensor([1.0, 2.0], requires_grad=True)

    @tg.compile
    def loss(x):
        return (x * w).sum()

    x = tg.tensor([3.0, 4.0])
    assert loss(x).item() == 11.0
    loss(x).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 4.0])
    with tg.no_grad():
        w.data = w.detach().numpy() * 10  # new values, same shape: the trace still applies
    assert loss(x).item() == 110.0
    assert loss.cache_info().size == 1


def test_wrong_shape_retraces_as_a_new_signature():
    f = tg.compile(lambda x: (x * x).sum())
    assert f(tg.ones(2)).item() == 2.0
    assert f(tg.ones(3)).item() == 3.0
    assert f(tg.ones(2, dtype=tg.float64)).item() == 2.0
    assert f.cache_info().misses == 3


def test_error_while_tracing_names_the_users_line_and_changes_nothing():
    @tg.compile
    def f(x):
        y = x * 2
        return y @ tg.ones(5)  # a shape error

    x = tg.ones(3, requires_grad=True)
    with pytest.raises(tg.OpError, match=r"matmul: shapes \(3,\) and \(5,\)") as info:
        f(x)
    message = str(info.value) + " ".join(getattr(info.value, "__notes__", ()))
    assert "test_compile.py" in message and "return y @ tg.ones(5)" in message
    assert f.cache_info().size == 0 and x.grad is None and x.grad_fn is None


def test_user_exception_is_reraised_with_its_line():
    @tg.compile
    def f(x):
        raise KeyError("boom")

    with pytest.raises(KeyError) as info:
        f(tg.ones(1))
    assert any("test_compile.py" in n and "raise KeyError" in n for n in info.value.__notes__)
    # the traceback ends in the user's function, with no transgrad frames beneath it
    assert str(info.traceback[-1].path).endswith("test_compile.py")
    assert "raise KeyError" in str(info.traceback[-1].statement)


def test_grad_of_non_scalar_is_a_clear_error():
    with pytest.raises(TypeError, match="must return a scalar float tensor, got float32\\[3\\]"):
        tg.grad(lambda x: x * 2)(tg.ones(3))


def test_numpy_inside_compiled_function_is_fenced():
    @tg.compile
    def f(x):
        return x * float(x.numpy().sum())

    with pytest.raises(TraceError, match="numpy\\(\\) of a tensor inside a compiled function"):
        f(tg.ones(2))


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_array_inside_compiled_function_is_fenced(backend):
    # `.array` read the trace's values unguarded: a second call with other signs reused the first one's mask
    def f(x):
        return (x * tg.tensor((x.array > 0).astype(np.float32))).sum()

    x = tg.tensor(np.array([1.0, -2.0, 3.0], np.float32), requires_grad=True)
    f(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 1.0])  # eager reads values, as PyTorch's .numpy()
    with pytest.raises(TraceError, match=r"\.array of a tensor inside a compiled function at .*test_compile.py"):
        tg.compile(f, backend=backend)(x)
    with pytest.raises(TraceError, match=r"`array\(\)` of a tensor .* records a backward"):  # in a compiled backward
        tg.compile(lambda x: _ArrayScaled.apply(x).sum(), backend=backend)(x).backward()


class _ArrayScaled(tg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 1.0

    @staticmethod
    def backward(ctx, g):
        return g / float(np.abs(g.array).max())


@pytest.mark.parametrize("place", ["numpy", "jax"])
def test_an_eager_custom_backward_may_read_values_as_in_pytorch(place):
    # eager records a backward with a custom Function for one run: float() and .array see this run's values
    for w0 in ([0.5, 2.0, -4.0], [10.0, 1.0, 1.0]):
        x = tg.ones(3).to(place).requires_grad_()
        (_ArrayScaled.apply(x) * tg.tensor(w0).to(place)).sum().backward()
        np.testing.assert_allclose(np.asarray(x.grad.array), np.array(w0) / np.abs(w0).max(), rtol=1e-6)


def test_a_custom_backward_returning_a_tensor_made_from_values_is_a_clear_error():
    class FromNumPy(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            return tg.tensor(g.numpy() * 2)  # PyTorch's NumPy-extension idiom: not recorded, so not supported

    with pytest.raises(TraceError, match=r"not an input of this trace was used: a backward \(a custom Function's"):
        FromNumPy.apply(tg.ones(3, requires_grad=True)).sum().backward()


def test_debug_env_prints_generated_code():
    code = ("import transgrad as tg\n"
            "f = tg.compile(lambda x: (x * 3).sum())\n"
            "f(tg.ones(2))\n")
    env = dict(os.environ, TRANSGRAD_DEBUG="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert "def lambda_forward(x):" in r.stderr


EXPORT_CHECK = """
import numpy as np
import exported as m
v = np.array([0.1, 1.0, 0.0001], np.float32)
for x0, k in {cases!r}:
    x = np.array(x0, np.float32)
    y, g = m.value_and_vjp(x, v)
    assert np.allclose(y, x * 2.0 ** (k + 1)) and np.allclose(g, v * 2.0 ** (k + 1)), (x0, k)
    assert np.allclose(m.forward(x), x * 2.0 ** (k + 1))
try:
    m.forward(np.array({unseen!r}, np.float32))
except m.NoTraceError as e:
    assert "line 15" in str(e) and "not exported" in str(e), e
else:
    raise AssertionError("an unexported path ran")
print("ok")
"""


def test_export_runs_without_transgrad(tmp_path):
    f = tg.compile(cf.tutorial_loop, loops="unroll")  # each trip count a path of its own
    seen = [[1.0, 2.0, 3.0], [100.0, 2.0, 3.0]]
    for x0 in seen:
        f(tg.tensor(x0, requires_grad=True))
    tg.export(f, tg.tensor([10.0, 2.0, 3.0], requires_grad=True), path=str(tmp_path / "exported.py"))
    cases = [(x0, loop_trips(np.array(x0))) for x0 in seen + [[10.0, 2.0, 3.0], [1.1, 2.0, 3.0]]]
    assert len({k for _, k in cases}) == 3  # the last input reuses the first input's path
    run_without_transgrad(tmp_path, EXPORT_CHECK.format(cases=cases, unseen=[0.001, 0.0, 0.0]))


def test_export_of_a_scalar_function_gives_value_and_grad(tmp_path):
    path = tmp_path / "tutorial_export.py"
    tg.export(tg.grad(cf.tutorial), tg.ones(2, 2), path=str(path))
    run_without_transgrad(tmp_path, "import numpy as np, tutorial_export as m\n"
                                    "value, g = m.value_and_grad(np.full((2, 2), 2.0, np.float32))\n"
                                    "assert value == 48.0 and np.allclose(g, 1.5 * (2.0 + 2)), (value, g)\n"
                                    "print('ok')\n")


def test_random_numbers_inside_a_compiled_function_are_drawn_at_every_call():
    """Each call draws anew, the numbers an eager run draws from the same seed."""
    def noisy(x):
        return x * tg.rand(3) + tg.randn(3)

    compiled = tg.compile(noisy)
    for seed in (0, 1, 2):
        tg.manual_seed(seed)
        got = compiled(tg.zeros(3) + 1).numpy()
        tg.manual_seed(seed)
        g = np.random.default_rng(seed)  # the generator tg.manual_seed seeds, drawn in the same order
        u, n = g.random(3).astype(np.float32), g.standard_normal(3).astype(np.float32)
        np.testing.assert_allclose(got, u + n, rtol=1e-6)
    assert compiled.cache_info().misses == 1


SCALE = 2.0


def scaled(x):
    return (x * SCALE).sum()


def test_changed_python_values_retrace():
    global SCALE
    lr = 0.5

    @tg.compile
    def step(x):
        return (x * lr).sum()

    f = tg.compile(scaled)
    x = tg.ones(3)
    assert step(x).item() == 1.5 and f(x).item() == 6.0
    lr, SCALE = 0.25, 3.0
    try:
        assert step(x).item() == 0.75 and f(x).item() == 9.0  # never the stale constant
        assert f.retrace_log[-1].startswith("scaled: `SCALE` changed since it was traced")
        assert tg.grad(scaled)(np.ones(2, np.float32)).numpy().tolist() == [3.0, 3.0]
    finally:
        SCALE = 2.0


# ---- NOTE [decisions]: the program that runs decides -------------------------------------------------
def item_loop(x):
    n = int((x * x).sum().item())
    y = x
    for _ in range(n):
        y = y * 2
    return y.sum()


def float_branch(x):
    if float((x * x).sum()) > 4.0:
        return (x * 2).sum()
    return x.sum()


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("fn,x0", [(item_loop, [0.5, 0.4, -0.3]), (float_branch, [-2.1, 0.4, 0.9])])
def test_decisions_on_exact_values_are_the_programs(fn, x0, backend):
    x = np.array(x0, np.float32)
    s = float((x.astype(np.float64) ** 2).sum())  # the oracle: 0.5 (no doubling) and 5.38 (> 4)
    want = x.sum() * (2 ** int(s) if fn is item_loop else (2 if s > 4 else 1))
    f = tg.compile(fn, backend=backend)
    for _ in range(2):
        np.testing.assert_allclose(f(tg.tensor(x)).item(), want, rtol=1e-6)
    value, g = tg.value_and_grad(fn, backend=backend)(x)
    np.testing.assert_allclose(value.item(), want, rtol=1e-6)
    assert f.cache_info().retraces == 0


def folded_equal(x):
    # eagerly (x / 3) * 3 may differ from x in the last bit; generated code folds it to x * 1.0
    if float(((x / 3) * 3).sum()) == float(x.sum()):
        return x.sum() * 10
    return x.sum()


def test_a_decision_generated_code_computes_differently_is_retraced_with_its_value():
    rng = np.random.default_rng(0)
    for _ in range(1000):  # an input on which eager arithmetic and the folded code disagree
        x = rng.standard_normal(7).astype(np.float32)
        if np.float32(((x / np.float32(3)) * np.float32(3)).sum()) != np.float32(x.sum()):
            break
    else:
        raise AssertionError("no input found where the folding changes the last bit")
    assert folded_equal(tg.tensor(x)).item() == pytest.approx(x.sum())  # eager: the values differ
    f = tg.compile(folded_equal)
    assert f(tg.tensor(x)).item() == pytest.approx(x.sum() * 10)  # the program's values are equal
    assert f(tg.tensor(x)).item() == pytest.approx(x.sum() * 10) and f.cache_info()[:3] == (1, 1, 0)


def test_export_differentiates_float_inputs_that_do_not_require_grad(tmp_path):
    path = tmp_path / "plain_export.py"
    tg.export(lambda x, n: (x * x).sum() * n, tg.tensor([1.0, 2.0]), 3, path=str(path))
    ns = {}
    exec(path.read_text(), ns)
    value, g = ns["value_and_grad"](np.array([1.0, 2.0], np.float32), 3)
    assert float(value) == 15.0 and np.asarray(g).tolist() == [6.0, 12.0]  # d/dx 3 x^2 = 6x
    only_n = tg.export(lambda x, w: (x * w).sum(), tg.ones(2), tg.tensor([2.0, 3.0]), argnums=1)
    ns = {}
    exec(only_n, ns)
    assert np.asarray(ns["value_and_grad"](np.ones(2, np.float32), np.array([2.0, 3.0], np.float32))[1]).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_backward_of_a_compiled_call_is_generated_once_for_every_calling_line(backend):
    from transgrad import engine

    f = tg.compile(cf.tutorial, backend=backend)
    x = tg.ones(2, 2, requires_grad=True)
    f(x).backward()  # the first call generates the backward
    before = engine.stats["misses"]
    out = f(x)
    out.backward()
    out2 = f(x); out2.backward()  # noqa: E702  (another line, another name)
    loss = f(x) * 1
    loss.backward()
    assert engine.stats["misses"] == before + 1  # only the new graph (with the * 1) is generated
    np.testing.assert_allclose(np.asarray(x.grad.array), np.full((2, 2), 4 * 4.5))
    code = tg.backward_code(f(x))  # the call of the function's own backward, whose comments cite its lines
    assert "= tutorial_backward(g_" in code and "test_compile.py" not in code
    assert "compiled_functions.py" in f.code(x)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_the_backward_f_code_prints_is_the_one_backward_runs(backend):
    """NOTE [shown is run]: `.backward()` on a compiled call runs the very function whose
    source `f.code()` prints, called by name from the engine's code."""
    import inspect

    def g(x):
        y = x.sin() * x
        return (y * y).sum()

    f = tg.compile(g, backend=backend)
    x = tg.tensor([0.5, -1.0], requires_grad=True)
    out = f(x)
    callee, _ = out.grad_fn.op.trace.backward_programs[0]
    calls = []
    original = callee.fn

    def counting(*args):
        calls.append(1)
        return original(*args)

    callee.fn = counting  # the engine binds what callee.fn is when it first generates its code
    out.backward()
    assert calls == [1]
    python = getattr(original, "__wrapped__", original)  # jax.jit keeps the Python function
    assert inspect.getsource(python) == callee.source and callee.source in f.code(x)
    assert f"= {callee.name}(" in tg.backward_code(f(x))
    x0 = np.array([0.5, -1.0])
    y0 = np.sin(x0) * x0
    np.testing.assert_allclose(np.asarray(x.grad.array), 2 * y0 * (np.cos(x0) * x0 + np.sin(x0)), rtol=1e-5)


def if_in_loop(x):
    y = x
    for i in range(3):
        if (y * i).sum() > 2:
            y = y * 2
    return y.sum()


def test_retrace_of_an_if_inside_a_loop_names_the_decision():
    f = tg.compile(if_in_loop)
    assert f(tg.tensor([0.1, 0.1])).item() == pytest.approx(0.2)
    assert f(tg.tensor([1.0, 1.0])).item() == 4.0  # (1+1)*2 > 2 at i = 2 only
    assert f.retrace_log[-1].endswith("`if (y * i).sum() > 2:` (its decision number 3 in the call): the cached "
                                      "trace took False, this input takes True")


def test_debug_env_zero_means_off():
    code = "import transgrad as tg\ntg.compile(lambda x: (x * 3).sum())(tg.ones(2))\n"
    for value in ("0", "false", ""):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env=dict(os.environ, TRANSGRAD_DEBUG=value))
        assert "def " not in r.stderr


def test_folded_loop_iterations_are_named_in_the_comment():
    x = tg.tensor([0.1, 1.0, 0.0001], requires_grad=True)
    y = cf.tutorial_loop(x)
    code = tg.backward_code(y, tg.ones(3))
    assert "# grad of: y = y * 2  [compiled_functions.py:16]  (9 times, folded)" in code
    assert "# grad of: y = x * 2  [compiled_functions.py:14]" in code and "* 1024" in code


def test_export_writes_the_backward_f_code_prints():
    f = tg.compile(cf.tutorial)
    x = tg.ones(2, 2, requires_grad=True)
    shown = f.code(x)
    module = tg.export(f, x)
    backward = shown[shown.index("def tutorial_backward("):]
    exported = module[module.index("def tutorial_backward_0("):].split("\n\n")[0]
    assert exported.replace("tutorial_backward_0(", "tutorial_backward(", 1).strip() == backward.strip()
    ns = {}
    exec(module, ns)
    out, y = ns["tutorial_forward_0"](np.ones((2, 2), np.float32))
    np.testing.assert_allclose(ns["tutorial_backward_0"](np.float32(1.0), y), np.full((2, 2), 4.5))


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_golden_rolled_loop_and_its_values(backend):
    """A rolled loop (NOTE [loops]): the pinned code keeps the loop, and the pinned NumPy
    forward and backward give jax.grad's gradients (JAX differentiating the Python loop)."""
    import jax
    import jax.numpy as jnp

    from golden_cases import rnn
    from test_codegen import check_golden

    rng = np.random.default_rng(4)
    h, x = rng.standard_normal(4).astype(np.float32) * 0.3, rng.standard_normal(4).astype(np.float32)
    W, U = (rng.standard_normal((2, 4, 4)) * 0.5).astype(np.float32)
    f = tg.compile(rnn, backend=backend)
    src = f.code(tg.tensor(h, requires_grad=True), tg.tensor(W, requires_grad=True), tg.tensor(U, requires_grad=True),
                 tg.tensor(x))
    check_golden(f"compiled_rnn_{backend}", src)
    if backend != "numpy":
        return
    from transgrad.backends import load, numpy as np_backend

    fns = load(src, "golden", np_backend.NAMESPACE)

    def jnp_rnn(h, W, U):
        while jnp.linalg.norm(h) < 20:
            h = jnp.tanh(h @ W + x @ U) * 1.5 + h
        return jnp.sum(h * h)

    for s in (1.0, 0.1, 3.0):  # different trip counts, one pinned program
        out = fns["rnn_forward"](h * s, W, U, x)
        grads = fns["rnn_backward"](np.float32(1.0), *out[1:])
        want = jax.grad(jnp_rnn, argnums=(0, 1, 2))(h * s, W, U)
        np.testing.assert_allclose(out[0], jnp_rnn(h * s, W, U), rtol=1e-5)
        for g, w in zip(grads, want):  # float32 both: to 1e-5 of the largest entry
            np.testing.assert_allclose(g, np.asarray(w), rtol=1e-4, atol=1e-5 * float(np.abs(w).max()))


# ---- plans: a call like the last one runs its trace with only its arguments checked (NOTE [plans]) ----
def plan_branchy(x, w):
    y = (x * w).tanh()
    if y.sum() > 0:
        return (y * y).sum()
    return (y * 3).sum() - x.sum()


def plan_branchy_grads(x, w):
    """Value and gradients of plan_branchy, in closed form (float64)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    y = np.tanh(x * w)
    dy = 1 - y * y
    if y.sum() > 0:
        return (y * y).sum(), 2 * y * dy * w, 2 * y * dy * x
    return (y * 3).sum() - x.sum(), 3 * dy * w - 1, 3 * dy * x


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_calls_like_the_last_one_stay_right_when_values_shapes_and_paths_change(backend):
    rng = np.random.default_rng(23)
    f = tg.compile(plan_branchy, backend=backend)
    vg = tg.value_and_grad(plan_branchy, argnums=(0, 1), backend=backend)
    w = tg.tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    for i in range(11):  # values change every call; the sign of the sum (the path) and the shape now and then
        n = 5 if i % 4 != 3 else 6
        x0 = rng.standard_normal(n).astype(np.float32) * (1 if i % 3 else -1)
        w0 = w.detach().numpy()[:n] if n == 5 else rng.standard_normal(n).astype(np.float32)
        want, gx, gw = plan_branchy_grads(x0, w0)
        x = tg.tensor(x0, requires_grad=True)
        wt = w if n == 5 else tg.tensor(w0, requires_grad=True)
        out = f(x, wt)
        assert out.requires_grad
        out.backward()
        np.testing.assert_allclose(out.item(), want, rtol=2e-5, atol=1e-5)
        np.testing.assert_allclose(x.grad.numpy(), gx, rtol=2e-5, atol=1e-5)
        np.testing.assert_allclose(wt.grad.numpy(), gw, rtol=2e-5, atol=1e-5)
        wt.grad = None
        value, (g1, g2) = vg(x0, w0)  # arrays this time
        np.testing.assert_allclose(value.item(), want, rtol=2e-5, atol=1e-5)
        np.testing.assert_allclose(g1.numpy(), gx, rtol=2e-5, atol=1e-5)
        np.testing.assert_allclose(g2.numpy(), gw, rtol=2e-5, atol=1e-5)
    with tg.no_grad():  # the same arguments under no_grad: values, nothing recorded
        out = f(x, w)
    assert not out.requires_grad and out.grad_fn is None
    x0 = x.detach().numpy().copy()
    with tg.no_grad():
        x.add_(1.0)  # an argument changed in place: the next call reads its new values
    want, gx, _ = plan_branchy_grads(x0 + 1, w.detach().numpy())
    out = f(x, w)
    np.testing.assert_allclose(out.item(), want, rtol=2e-5, atol=1e-5)
    x.grad = None
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), gx, rtol=2e-5, atol=1e-5)
    frozen = tg.tensor(x0)  # the same shapes without requires_grad: no gradient recorded for it
    assert not f(frozen, w.detach()).requires_grad
    long = tg.tensor(np.concatenate([x0, x0]), requires_grad=True)
    want, gx, _ = plan_branchy_grads(x0, w.detach().numpy())
    out = f(long[:5], w)  # a view: the general path takes it
    out.backward()
    np.testing.assert_allclose(long.grad.numpy()[:5], gx, rtol=2e-5, atol=1e-5)
    assert np.all(long.grad.numpy()[5:] == 0)
    g = tg.grad(plan_branchy, backend=backend)
    first = g(x0, w.detach().numpy())
    if backend == "numpy":  # a gradient is the caller's own array: writing into it changes no later result
        first.numpy()[:] = 1e6
    np.testing.assert_allclose(g(x0, w.detach().numpy()).numpy(), gx, rtol=2e-5, atol=1e-5)


def _layer_loss(x, w, b):
    return ((x @ w + b).tanh() ** 2).sum()


def _layer_loss_grads(x, w, b):
    """Closed form of _layer_loss's gradients (x, w, b)."""
    t = np.tanh(x @ w + b)
    dz = 2 * t * (1 - t * t)
    return dz @ w.T, x.T @ dz, dz.sum(0)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_backward_of_one_compiled_call_in_every_graph_shape_around_it(backend):
    # `loss = f(...); loss.backward()` runs the call's own backward when its inputs are leaves
    # (NOTE [one call]); hooks, retained gradients, a leaf passed twice, a non-leaf input and
    # anomaly mode take the general path. Every case against the closed form.
    from transgrad.engine import stats

    rng = np.random.default_rng(3)
    dt = np.float64 if backend == "numpy" else np.float32  # JAX without x64 holds float32
    x0, w0, b0 = (rng.standard_normal(s).astype(dt) for s in ((4, 3), (3, 2), (2,)))
    gx, gw, gb = _layer_loss_grads(*(a.astype(np.float64) for a in (x0, w0, b0)))
    tol = dict(rtol=1e-12 if backend == "numpy" else 2e-5, atol=1e-12 if backend == "numpy" else 1e-6)
    f = tg.compile(_layer_loss, backend=backend)

    def leaves():
        return tg.tensor(x0), tg.tensor(w0, requires_grad=True), tg.tensor(b0, requires_grad=True)

    for _ in range(2):  # first and cached call
        x, w, b = leaves()
        before = dict(stats)
        f(x, w, b).backward()
        assert stats == before  # no engine code was looked up or generated
        np.testing.assert_allclose(w.grad.numpy(), gw, **tol)
        np.testing.assert_allclose(b.grad.numpy(), gb, **tol)
        assert x.grad is None
        f(x, w, b).backward()  # accumulates
        np.testing.assert_allclose(w.grad.numpy(), 2 * gw, **tol)

    x, w, b = leaves()
    out = f(x, w, b)
    out.backward(retain_graph=True)
    out.backward(tg.tensor(np.array(0.5, dt)))
    np.testing.assert_allclose(b.grad.numpy(), 1.5 * gb, **tol)
    with pytest.raises(RuntimeError, match="second time"):
        out.backward()

    x, w, b = leaves()
    w.register_hook(lambda g: g * 3)
    out = f(x, w, b)
    out.retain_grad()
    out.backward()
    np.testing.assert_allclose(w.grad.numpy(), 3 * gw, **tol)
    np.testing.assert_allclose(b.grad.numpy(), gb, **tol)
    assert out.grad.item() == 1.0

    x, w, b = leaves()
    w2 = w * 1.0  # an input that is not a leaf
    f(x, w2, b).backward()
    np.testing.assert_allclose(w.grad.numpy(), gw, **tol)

    x, w, b = leaves()
    with tg.autograd.detect_anomaly():
        f(x, w, b).backward()
    np.testing.assert_allclose(w.grad.numpy(), gw, **tol)

    x, w, b = leaves()
    x.requires_grad_()
    f(x, w, b).backward()
    np.testing.assert_allclose(x.grad.numpy(), gx, **tol)

    # a leaf passed twice: d/dv sum(v * v * 3) = 6 v
    g = tg.compile(lambda a, c: (a * c * 3).sum(), backend=backend)
    v = tg.tensor(w0, requires_grad=True)
    g(v, v).backward()
    np.testing.assert_allclose(v.grad.numpy(), 6 * w0, **tol)
    a, c = tg.tensor(x0, requires_grad=True), tg.tensor(x0 + 1, requires_grad=True)
    g(a, c).backward()
    a.grad.zero_()
    np.testing.assert_allclose(c.detach().numpy(), x0 + 1)
    np.testing.assert_allclose(c.grad.numpy(), 3 * x0, **tol)

    # a non-scalar output with the gradient given
    h = tg.compile(lambda a, c: a * a * c, backend=backend)
    a, c = tg.tensor(x0, requires_grad=True), tg.tensor(x0 + 1, requires_grad=True)
    seed = rng.standard_normal(x0.shape).astype(dt)
    h(a, c).backward(tg.tensor(seed))
    np.testing.assert_allclose(a.grad.numpy(), seed * 2 * x0 * (x0 + 1), **tol)
    np.testing.assert_allclose(c.grad.numpy(), seed * x0 * x0, **tol)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        h(a, c).backward()
    k = tg.compile(lambda a, c: a * c.detach() + c, backend=backend)  # c's gradient is the seed itself
    a, c, s = tg.tensor(x0, requires_grad=True), tg.tensor(x0 + 1, requires_grad=True), tg.tensor(seed)
    k(a, c).backward(s)
    np.testing.assert_allclose(a.grad.numpy(), seed * (x0 + 1), **tol)
    c.grad.zero_()  # a gradient is a tensor of its own: the caller's seed keeps its values
    np.testing.assert_array_equal(s.numpy(), seed)


def test_autograd_backward_takes_a_tensor_or_a_sequence():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    tg.autograd.backward((x * x).sum())
    tg.autograd.backward([x * x], [tg.tensor([1.0, 0.5])], inputs=x)
    tg.autograd.backward(x * x, tg.tensor([1.0, 0.0]), inputs=[x])
    np.testing.assert_allclose(x.grad.numpy(), [2 + 2 + 2, 4 + 2])


def _large_program(lib, x, w):
    y = x + 2
    z = (y * y * 3).sin() / (w.exp() + 1)
    z = lib.where(z > 0, z, z * 0.1).clamp(-0.5, 0.45)
    return (z * x).mean()


@pytest.mark.parametrize("mode", ["eager", "compile-numpy", "compile-jax", "grad-numpy", "grad-jax"])
def test_gradients_of_large_inputs_whose_backward_is_traced_without_values(mode):
    # 300x300: the elementwise rules of the backward are traced without computing values
    # (NOTE [values nobody reads]); the gradients against PyTorch in float64
    import torch

    rng = np.random.default_rng(7)
    x0, w0 = (rng.uniform(-1.0, 1.0, (300, 300)).astype(np.float32) for _ in range(2))
    xt, wt = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x0, w0))
    _large_program(torch, xt, wt).backward()
    f = lambda x, w: _large_program(tg, x, w)  # noqa: E731
    if mode.startswith("grad"):
        gx, gw = tg.grad(f, argnums=(0, 1), backend=mode.split("-")[1])(x0, w0)
    else:
        g = f if mode == "eager" else tg.compile(f, backend=mode.split("-")[1])
        for _ in range(2):  # first and cached call
            x, w = tg.tensor(x0, requires_grad=True), tg.tensor(w0, requires_grad=True)
            g(x, w).backward()
        gx, gw = x.grad, w.grad
    np.testing.assert_allclose(np.asarray(gx.array), xt.grad.numpy(), rtol=2e-4, atol=1e-8)
    np.testing.assert_allclose(np.asarray(gw.array), wt.grad.numpy(), rtol=2e-4, atol=1e-8)


def _uses_own_grad(x, w):
    loss = ((x * w).sum() - 1) ** 2
    return loss, None if w.grad is None else (x * w.grad).sum()


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_a_compiled_function_reads_the_grad_of_its_argument(backend):
    # `w.grad` inside the function is the caller's w.grad at each call (it read None before)
    f = tg.compile(_uses_own_grad, backend=backend)
    x = tg.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    w = tg.tensor(np.array([0.5, 0.25], np.float32), requires_grad=True)
    for i in range(4):
        loss, s = f(x, w)
        loss.backward()
        r = x.detach().numpy() @ w.detach().numpy() - 1  # d loss / dw = 2 r x, accumulated i + 1 times
        if i == 0:
            assert s is None
        else:
            np.testing.assert_allclose(s.item(), (x.detach().numpy() * 2 * r * x.detach().numpy() * i).sum(), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(w.grad.array), 2 * r * x.detach().numpy() * (i + 1), rtol=1e-6)


def test_grad_with_negative_argnums_counts_from_the_last_argument_as_jax():
    import jax
    import jax.numpy as jnp

    x0, y0 = np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0], np.float32)
    got = tg.value_and_grad(lambda x, y: (x * y * y).sum(), argnums=(0, -1))(tg.tensor(x0), tg.tensor(y0))
    want = jax.value_and_grad(lambda x, y: (x * y * y).sum(), argnums=(0, -1))(jnp.asarray(x0), jnp.asarray(y0))
    np.testing.assert_allclose(got[0].numpy(), np.asarray(want[0]))
    for g, w in zip(got[1], want[1]):
        np.testing.assert_allclose(g.numpy(), np.asarray(w))
    with pytest.raises(ValueError, match=r"argnums \(-3,\) out of range for 2 arguments"):
        tg.grad(lambda x, y: (x * y).sum(), argnums=-3)(tg.tensor(x0), tg.tensor(y0))
