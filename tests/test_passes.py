"""Each pass on small hand-built graphs, and optimised against unoptimised code on every
op-table spec (the interpreter runs the raw graph; generated code runs the optimised one)."""
import numpy as np
import pytest

import transgrad as tg
from transgrad import interp
from transgrad.engine.run import prepare
from transgrad.ir import Eqn, Graph, Lit, Var, lint
from transgrad.passes import cse, dce, last_uses, simplify

from op_specs import cases, sample


def v(shape=(3,), hint="v", dtype=np.dtype("float32")):
    return Var(shape, dtype, hint)


def test_dce_drops_unused_eqns_and_inputs():
    x, y, a, b = v(hint="x"), v(hint="y"), v(), v()
    g = Graph((x, y), (Eqn("mul", (x, Lit(2)), (), a), Eqn("sin", (y,), (), b)), (a,))
    out = dce(g)
    assert [e.op for e in out.eqns] == ["mul"] and out.inputs == (x,)
    lint(out)


def test_cse_merges_identical_eqns_but_not_different_literals():
    x, a, b, c, d = v(hint="x"), v(), v(), v(), v()
    g = Graph((x,), (Eqn("mul", (x, Lit(2)), (), a), Eqn("mul", (x, Lit(2)), (), b),
                     Eqn("mul", (x, Lit(2.0)), (), c), Eqn("add", (a, b), (), d)), (d, c))
    out = cse(g)
    assert [e.op for e in out.eqns] == ["mul", "mul", "add"]
    assert out.eqns[2].ins == (a, a)
    np.testing.assert_array_equal(interp.run(out, [np.arange(3.0)])[0], interp.run(g, [np.arange(3.0)])[0])


def test_simplify_folds_scalar_chains():
    x, a, b, c = v(hint="x"), v(), v(), v()
    g = Graph((x,), (Eqn("mul", (x, Lit(2)), (), a), Eqn("mul", (a, Lit(2)), (), b), Eqn("div", (b, Lit(8)), (), c)), (c,))
    out = dce(simplify(g))
    assert len(out.eqns) == 1 and out.eqns[0].op == "mul" and out.eqns[0].ins == (x, Lit(0.5))


def test_simplify_keeps_values_used_twice():
    x, a, b = v(hint="x"), v(), v()
    g = Graph((x,), (Eqn("mul", (x, Lit(2)), (), a), Eqn("mul", (a, Lit(3)), (), b)), (a, b))
    assert dce(simplify(g)).eqns == g.eqns


def test_simplify_sinks_broadcasts():
    s, y = Var((), np.dtype("float32"), "s"), v((2, 3), "y")
    e, m, p = v((2, 3)), v((2, 3)), v((2, 3))
    g = Graph((s, y), (Eqn("expand", (s,), (("shape", (2, 3)),), e), Eqn("mul", (e, Lit(3)), (), m),
                       Eqn("mul", (m, y), (), p)), (p,))
    out = dce(simplify(g))
    assert [q.op for q in out.eqns] == ["mul", "mul"]
    args = [np.float32(2.0), np.arange(6, dtype=np.float32).reshape(2, 3)]
    np.testing.assert_array_equal(interp.run(out, args)[0], interp.run(g, args)[0])


def test_liveness_frees_each_value_once_after_its_last_use():
    x, a, b = v(hint="x"), v(), v()
    g = Graph((x,), (Eqn("sin", (x,), (), a), Eqn("mul", (a, x), (), b)), (b,))
    assert last_uses(g) == {1: (a, x)}


GRAD_CASES = [c for c in cases() if c[1].grad]


@pytest.mark.parametrize("name,spec,shapes", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_optimised_backward_matches_unoptimised(name, spec, shapes):
    rng = np.random.default_rng(4)
    xs = [tg.tensor(a, requires_grad=True) for a in sample(spec, shapes, rng, np.float32)]
    out = spec.fn(*xs)
    order, c, seeds = prepare([out], [tg.tensor(rng.standard_normal(out.shape).astype(np.float32))], xs)
    lint(c.raw)
    lint(c.graph)
    assert len(c.graph.eqns) <= len(c.raw.eqns)
    want = interp.run(c.raw, c.arguments(order, seeds, raw=True))
    got = c.fn(*c.arguments(order, seeds))
    got = got if len(c.graph.outputs) > 1 else (got,)
    for g_, w in zip(got, want):
        if w is None:
            assert g_ is None
        else:
            np.testing.assert_allclose(g_, w, rtol=2e-6, atol=1e-6)


def test_reuse_buffers_writes_into_dying_temporaries_only():
    from transgrad.passes.reuse import reuse_buffers

    big = (256, 256)
    x, a, b, c = v(big, "x"), v(big, "a"), v(big, "b"), v(big, "c")
    g = Graph((x,), (Eqn("sin", (x,), (), a), Eqn("mul", (a, Lit(2.0)), (), b), Eqn("add", (b, x), (), c)), (c,))
    out = reuse_buffers(g)
    assert [dict(e.params).get("into") for e in out.eqns] == [None, 0, 0]  # never into the input x
    arg = np.random.default_rng(0).standard_normal(big).astype(np.float32)
    np.testing.assert_array_equal(interp.run(out, [arg])[0], np.sin(arg) * 2 + arg)
    small = Graph((v(hint="x"),), (), ())
    assert reuse_buffers(small).eqns == ()


def test_large_arrays_reuse_buffers_and_inputs_stay_untouched():
    import compiled_functions as cf

    x0 = np.random.default_rng(1).standard_normal((1000, 1000)).astype(np.float32)
    keep = x0.copy()
    df = tg.grad(cf.tutorial)
    code = df.code(x0)
    assert "out=" in code
    np.testing.assert_allclose(df(x0).numpy(), 6 * (keep.astype(np.float64) + 2) / x0.size, rtol=1e-6)
    np.testing.assert_array_equal(x0, keep)
