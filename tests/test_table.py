"""Integrity of the op table: every row is complete, consistent and tested."""
import inspect

import libcst as cst
import pytest

from transgrad.codegen.template import Template
from transgrad.ops import OPS

from op_specs import SPECS


def test_every_row_has_a_spec():
    missing = set(OPS) - {s.row for s in SPECS}
    assert not missing, f"op-table rows without an OpSpec in tests/op_specs.py: {sorted(missing)}"


def test_every_spec_names_a_row():
    assert {s.row for s in SPECS} <= set(OPS)


@pytest.mark.parametrize("name", sorted(OPS))
def test_template_placeholders_are_inputs_and_params(name):
    row = OPS[name]
    assert set(row.tpl.names) <= set(row.inputs) | set(row.params)
    # every non-index input and every param is used: an unsupplied `{x}` would parse as a set
    expected = set(row.params) | (set(row.inputs[:-1]) if row.variadic and name in ("getitem", "index_put", "setitem") else set(row.inputs))
    assert set(row.tpl.names) == expected, f"{name}: template uses {row.tpl.names}"


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


def test_unsupplied_placeholder_is_an_error():
    t = Template("{a} + {b}")
    with pytest.raises(KeyError, match="b"):
        t.fill({"a": cst.Name("x")})


def test_template_fill_shares_untouched_subtrees():
    t = Template("xp.sum({a} * 2, axis=(0, 1))")
    node = t.fill({"a": cst.Name("x")})
    assert cst.Module([]).code_for_node(node) == "xp.sum(x * 2, axis=(0, 1))"
