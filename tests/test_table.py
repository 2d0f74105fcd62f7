"""Integrity of the op table: every row is complete, consistent, tested, and reachable as
PyTorch spells it."""
import inspect

import libcst as cst
import numpy as np
import pytest

import transgrad as tg
from transgrad.codegen.template import Template, parsed
from transgrad.ops import OPS
from transgrad.passes import dce
from transgrad.trace import Tracer, tracing

from op_specs import SPECS, sample

INDEXED = ("getitem", "index_put", "setitem")  # their index arrays are named by the `index` param


def test_every_row_has_a_spec():
    missing = set(OPS) - {s.row for s in SPECS}
    assert not missing, f"op-table rows without an OpSpec in tests/op_specs.py: {sorted(missing)}"


def test_every_spec_names_a_row():
    assert {s.row for s in SPECS} <= set(OPS)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
@pytest.mark.parametrize("name", sorted(OPS))
def test_template_placeholders_are_inputs_and_params(name, backend):
    row = OPS[name]
    tpl = parsed(row.spellings[backend])
    # every non-index input and every param is used: an unsupplied `{x}` would parse as a set
    expected = set(row.params) | (set(row.inputs[:-1]) if name in INDEXED else set(row.inputs))
    if name in INDEXED and backend == "jax":
        expected.add("mask_counts")  # XLA needs the static number of each mask's True values
    assert set(tpl.names) == expected, f"{name}: template uses {tpl.names}"


@pytest.mark.parametrize("name", sorted(OPS))
def test_vjp_takes_the_fixed_vocabulary(name):
    """A rule is called as vjp(g, out, *inputs, **params) and names its inputs as the row does."""
    row = OPS[name]
    if row.vjp is None:
        return
    sig = inspect.signature(row.vjp)
    names = list(sig.parameters)
    assert names[:2] == ["g", "out"]
    assert names[2:2 + len(row.inputs)] == list(row.inputs)
    inputs = [object()] * (len(row.inputs) + (1 if row.variadic else 0))
    sig.bind(None, None, *inputs, **{p: None for p in row.params})


def test_every_row_is_reachable_as_pytorch_spells_it():
    for row in OPS.values():
        if row.method is not None:
            assert hasattr(tg.Tensor, row.method), f"{row.name}: Tensor.{row.method} is missing"
        if row.function is not None:
            assert callable(getattr(tg, row.function, None)), f"{row.name}: tg.{row.function} is missing"
            assert row.function in tg.__all__


DIFF_SPECS = [s for s in SPECS if s.grad and s.shapes[0]]


@pytest.mark.parametrize("spec", DIFF_SPECS, ids=lambda s: f"{s.row}-{s.id}" if s.id else s.row)
def test_a_rule_reads_what_its_row_declares(spec):
    """Replay the rule of the op `spec.fn` records last on placeholders: the values its
    backward (after dead-code elimination) reads are those the row's `reads` names."""
    xs = [tg.tensor(a, requires_grad=True) for a in sample(spec, spec.shapes[0], np.random.default_rng(0))]
    out = spec.fn(*xs)
    node = out.grad_fn
    row = OPS[spec.row]
    if node is None or node.op is not row:
        return  # the spec's last operation is another row (a composition); its own spec covers it
    tr = Tracer()
    names = list(row.inputs[:-1] if row.variadic else row.inputs)
    placeholders = {}
    with tracing(tr):
        g = tr.placeholder(np.ones(out.shape, out.dtype), "g")
        args = []
        for k, a in enumerate(node.saved):
            name = names[k] if k < len(names) else row.inputs[-1]
            if isinstance(a, tg.Tensor):
                t = tr.placeholder(a._data, name)
                placeholders[id(tr.vars[id(t)])] = name
                args.append(t)
            else:
                args.append(a)
        o = tr.placeholder(out._data, "out")
        placeholders[id(tr.vars[id(o)])] = "out"
        grads = row.vjp(g, o, *args, **node.params)
    outs = tuple(tr.vars[id(x)] for x in grads if isinstance(x, tg.Tensor))
    from transgrad.ir import Graph

    used = {placeholders[id(v)] for v in dce(Graph(tuple(tr.inputs), tuple(tr.eqns), outs)).inputs
            if id(v) in placeholders}
    assert used <= row.reads, f"{row.name} reads {sorted(used)}, declares {sorted(row.reads)}"


def test_unsupplied_placeholder_is_an_error():
    t = Template("{a} + {b}")
    with pytest.raises(KeyError, match="b"):
        t.fill({"a": cst.Name("x")})


def test_template_fill_shares_untouched_subtrees():
    t = Template("xp.sum({a} * 2, axis=(0, 1))")
    node = t.fill({"a": cst.Name("x")})
    assert cst.Module([]).code_for_node(node) == "xp.sum(x * 2, axis=(0, 1))"


ELEMENTWISE_SPECS = [s for s in DIFF_SPECS if OPS[s.row].elementwise]


@pytest.mark.parametrize("spec", ELEMENTWISE_SPECS, ids=lambda s: f"{s.row}-{s.id}" if s.id else s.row)
def test_large_inputs_record_the_backward_that_computed_values_record(spec, monkeypatch):
    """NOTE [values nobody reads]: on large arrays the elementwise rules of a backward are
    traced without computing values; the code they record is the code computed values give."""
    from transgrad.engine import run
    from transgrad.tensor import dispatch

    arrays = sample(spec, [(300, 300)] * len(spec.shapes[0]), np.random.default_rng(0))
    shaped, calls = dispatch._shaped, []
    monkeypatch.setattr(dispatch, "_shaped", lambda *a: calls.append(a[0].name) or shaped(*a))

    def code():
        run._cache.clear()
        xs = [tg.tensor(a, requires_grad=True) for a in arrays]
        out = spec.fn(*xs)
        return tg.backward_code((out * out).sum())  # the square's rule, then the op's, on its cotangent

    abstract = code()
    assert "mul" in calls  # the square's rule ran without values
    monkeypatch.setattr(dispatch, "ABSTRACT_SIZE", 10 ** 12)
    assert code() == abstract
