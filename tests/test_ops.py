"""Every op-table row: forward against NumPy, gradients (orders 1 and 2) against float64
central differences by random projection."""
import numpy as np
import pytest

import transgrad as tg
from transgrad.testing import check_grads

from op_specs import cases, sample

CASES = list(cases())


@pytest.mark.parametrize("name,spec,shapes", CASES, ids=[c[0] for c in CASES])
def test_forward_matches_numpy(name, spec, shapes):
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        args = sample(spec, shapes, rng, dtype)
        out = spec.fn(*[tg.tensor(a) for a in args])
        ref = spec.ref(*args)
        assert out.shape == np.shape(ref)
        if np.asarray(ref).dtype.kind == "f":
            assert out.dtype == np.asarray(ref).dtype, f"{name}: {dtype} input gave {out.dtype}"
            np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6 if dtype == np.float64 else 1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(out.numpy(), ref)


GRAD_CASES = [c for c in CASES if c[1].grad]


@pytest.mark.parametrize("name,spec,shapes", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients_match_central_differences(name, spec, shapes):
    rng = np.random.default_rng(1)
    args = sample(spec, shapes, rng)
    check_grads(spec.fn, args, order=spec.order, eps=spec.eps, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,spec,shapes", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_generated_code_agrees_with_interpreter(name, spec, shapes):
    """The generated backward and the reference interpreter run the same graph."""
    from transgrad import interp
    from transgrad.engine.run import prepare

    rng = np.random.default_rng(2)
    xs = [tg.tensor(a, requires_grad=True) for a in sample(spec, shapes, rng)]
    out = spec.fn(*xs)
    order, c, seeds = prepare([out], [tg.tensor(rng.standard_normal(out.shape))], xs)
    args = c.arguments(order, seeds)
    got = c.fn(*args)
    got = got if len(c.graph.outputs) > 1 else (got,)
    want = interp.run(c.graph, args)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            np.testing.assert_array_equal(g, w)
