"""Expression templates: parsed once per primitive, then filled by node substitution.

NOTE [templates]: generated code is built from LibCST nodes, never by pasting strings.
`Template("xp.sum({a}, axis={axis})")` parses an op-table spelling once (placeholders
become sentinel names) and precomputes which nodes lie on a path to a placeholder;
`fill(subs)` rebuilds only those nodes, sharing every other subtree, so a use costs a few
node constructions instead of a parse. Every placeholder must be supplied (an unsupplied
`{x}` would parse as a set literal).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re

import libcst as cst
import numpy as np

_PH = re.compile(r"\{(\w+)\}")
_SENT = "__tg_{}__"
_SENT_RE = re.compile(r"__tg_(\w+)__")


@functools.lru_cache(maxsize=None)
def parsed(text: str) -> "Template":
    """The template of an op-table spelling, parsed on first use."""
    return Template(text)


class Template:
    def __init__(self, text: str):
        self.text = text
        self.names = tuple(dict.fromkeys(_PH.findall(text)))
        tree = cst.parse_expression(_PH.sub(lambda m: _SENT.format(m.group(1)), text))
        self._build = _builder(tree)

    def fill(self, subs: dict) -> cst.BaseExpression:
        missing = set(self.names) - subs.keys()
        if missing:
            raise KeyError(f"template {self.text!r}: no value for {sorted(missing)}")
        return self._build(subs)


def _placeholder(node):
    if isinstance(node, cst.Name):
        m = _SENT_RE.fullmatch(node.value)
        return m.group(1) if m else None
    return None


def _builder(node):
    """Return fn(subs) -> node, or a constant node when no placeholder lies beneath."""
    name = _placeholder(node)
    if name is not None:
        return lambda s: s[name]
    if isinstance(node, cst.SubscriptElement):
        # `{a}[{index}]`: a placeholder that is a whole subscript may expand to many elements
        inner = _placeholder(node.slice.value) if isinstance(node.slice, cst.Index) else None
        if inner is not None:
            return lambda s: s[inner] if isinstance(s[inner], list) else node.with_changes(slice=cst.Index(s[inner]))
    fields = {}
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, cst.CSTNode):
            b = _builder(v)
            if callable(b):
                fields[f.name] = b
        elif isinstance(v, (list, tuple)) and any(isinstance(x, cst.CSTNode) for x in v):
            bs = [_builder(x) if isinstance(x, cst.CSTNode) else x for x in v]
            if any(callable(b) for b in bs):
                fields[f.name] = _seq(bs)
    if not fields:
        return node
    return lambda s: node.with_changes(**{k: b(s) for k, b in fields.items()})


def _seq(bs):
    def build(s):
        out = []
        for b in bs:
            r = b(s) if callable(b) else b
            out.extend(r) if isinstance(r, list) else out.append(r)
        return out

    return build


# ---- literals: Python values as expression nodes (FX's custom builtins idea) ----

def _paren(node):
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def attr(*parts: str) -> cst.BaseExpression:
    node = cst.Name(parts[0])
    for p in parts[1:]:
        node = cst.Attribute(node, cst.Name(p))
    return node


def literal(v, xp="xp") -> cst.BaseExpression:
    """A node for a constant: scalars, tuples, None, dtypes, inf/nan. Negative numbers
    are parenthesised so that substitution never changes precedence (`a ** (-1)`)."""
    if v is None or isinstance(v, (bool, np.bool_)):
        return cst.Name(repr(None if v is None else bool(v)))
    if isinstance(v, (int, np.integer)):
        v = int(v)
        return _paren(cst.UnaryOperation(cst.Minus(), cst.Integer(str(-v)))) if v < 0 else cst.Integer(str(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return attr(xp, "nan")
        if math.isinf(v):
            node = attr(xp, "inf")
        else:
            node = cst.Float(repr(abs(v)))
        return _paren(cst.UnaryOperation(cst.Minus(), node)) if math.copysign(1.0, v) < 0 else node
    if isinstance(v, tuple):
        return cst.Tuple([cst.Element(literal(x, xp)) for x in v])
    if isinstance(v, np.dtype):
        return attr(xp, v.name)
    if isinstance(v, str):
        return cst.SimpleString(repr(v))
    raise TypeError(f"transgrad codegen: no literal form for {type(v).__name__} {v!r}")
