"""`tg.export`: a standalone module of a function's generated code (NumPy or JAX only)."""
from __future__ import annotations

import base64
from typing import Callable, Optional, Sequence, Union
import inspect
import io

import numpy as np

from .api import compile
from .backends import get_backend, runtime
from .compiled import GradFunction
from .compiled.arguments import rebuild, tree_leaves
from .compiled.sources import Stale
from .tensor import Tensor, tensor


def _array_text(a):
    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


# LibCST (and the code generator) load on the first export, not with `import transgrad`
def _const_line(name, array):
    import libcst as cst

    call = cst.Call(cst.Name("load_array"), [cst.Arg(cst.SimpleString(repr(_array_text(array))))])
    value = cst.Call(cst.Attribute(cst.Name("xp"), cst.Name("asarray")), [cst.Arg(call)])
    return cst.Module([cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], value)])]).code


def export(f: Callable, *args, path: Optional[str] = None, backend: Optional[str] = None,
           argnums: Union[int, Sequence[int], None] = None, **kwargs) -> str:
    """Write (and return) a standalone module with the generated forward and gradient code of
    every trace `f` has seen, `args` included. The module needs only NumPy (or JAX with
    `backend="jax"`): `forward(*arrays)`, `value_and_grad(*arrays)` (scalar outputs) and
    `value_and_vjp(*arrays, cotangent)` pick the trace whose guards hold, and raise
    NoTraceError for an input that needs a path that was not exported. Gradients are with
    respect to `argnums` (positions in `args`): by default every floating-point argument,
    whether or not the example requires grad. Trace i's forward and backward are there too
    as `f.code()` prints them (`<name>_forward_<i>`, `<name>_backward_<i>`).

    >>> import transgrad as tg
    >>> src = tg.export(lambda x: (x * x).sum(), tg.ones(2, requires_grad=True))
    >>> ns = {}; exec(src, ns)
    >>> ns["value_and_grad"](ns["xp"].ones(2, "float32"))
    (np.float32(2.0), array([2., 2.], dtype=float32))
    """
    grad_fn = f if isinstance(f, GradFunction) else None
    cf = grad_fn._f if grad_fn else compile(f)
    if backend is not None and get_backend(backend) is not cf.backend:
        cf = compile(cf.fn, backend=backend)
    if argnums is None:
        argnums = grad_fn.argnums if grad_fn else tuple(i for i, a in enumerate(args) if _floating(a))
    argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    args = list(args)
    for p in argnums:  # traced as a forward call whose differentiated arguments require grad
        args[p] = rebuild(args[p], (tensor(getattr(x, "array", x)).requires_grad_() for x in tree_leaves(args[p])),
                          True)
    cf._trace_for(tuple(args), kwargs, None)
    be = cf.backend
    parts, table_fwd, table_vg, table_vjp, consts = [], [], [], [], {}
    for i, tr in enumerate(cf.traces):
        if tr.effects or tr.grad_reads or tr.randoms:
            what = "changes tensors from outside it" if tr.effects else (
                "reads .grad of tensors from outside it" if tr.grad_reads else "draws random numbers")
            raise TypeError(f"export: {cf.__name__} {what}; an exported module holds functions of their arguments "
                            "alone (pass such values in as arguments)")
        values = dict(tr.const_values)
        captured = [c.var for c in tr.captured]
        try:  # the tensors it reads from outside, as they are now, become constants of the module
            values.update({id(c.var): c.get(cf.fn, Tensor)._fresh() for c in tr.captured})
        except Stale:
            continue
        free = tr.consts + captured
        sig = _signature(tr)
        guards = [g.describe() for g in tr.guards]
        fwd = tr.forward_graph()
        fwd = fwd.replace(inputs=tuple(v for v in fwd.inputs if v not in captured) + tuple(captured))
        parts.append(_emit(fwd, f"forward_{i}", free, values, consts, be))
        table_fwd.append((sig, f"forward_{i}", guards))
        tr.forward()  # NOTE [shown is run]: the forward and backward that f.code() prints, as they are
        parts.append(_emit(tr.graph, f"{tr.name}_forward_{i}", free, values, consts, be))
        for callee, returned in tr.backward_programs.values():
            parts.append(_emit(callee.graph, f"{callee.name}_{i}", (), values, consts, be, len(returned) > 1))
        diff = {tr.positions[j] for j in tr.diff_inputs if j < len(tr.in_vars)}
        nums = argnums if all(p in diff for p in argnums) else ()  # a trace made without these gradients
        if nums and tr.n_out == 1 and tr.out_tree == ("T",):
            out = tr.out_vars[0]
            scalar = int(np.prod(out.shape)) == 1 and out.dtype.kind == "f"
            g = tr.joint_graph(nums, seed_input=not scalar)
            seed = () if scalar else (g.inputs[-1],)
            g = g.replace(inputs=tuple(v for v in g.inputs if v not in captured and v not in seed) + tuple(captured)
                          + seed)
            name = ("value_and_grad_" if scalar else "value_and_vjp_") + str(i)
            parts.append(_emit(g, name, free, values, consts, be))
            vsig = sig if scalar else sig + (("array", tuple(out.shape), str(out.dtype)),)
            (table_vg if scalar else table_vjp).append((vsig, name, guards))
    source = _module(cf, be, parts, consts, table_fwd, table_vg, table_vjp)
    if path is not None:
        with open(path, "w") as fh:
            fh.write(source)
    return source


def _floating(a):
    """An argument whose leaves are all floating point: differentiated unless argnums says otherwise."""
    leaves = tree_leaves(a)
    return bool(leaves) and all(type(x) is float or getattr(x, "dtype", np.dtype(int)).kind == "f" for x in leaves)


def _signature(tr):
    """Per dynamic argument ("array", shape, dtype); static arguments are checked by value."""
    out = []
    for part in tr.signature:
        if part == "bound":  # an int that bounds a loop: an input (NOTE [loops])
            out.append(("count",))
        elif isinstance(part, tuple) and len(part) == 3 and part[0] != "static" and not isinstance(part[0], str):
            out.append(("array", tuple(part[0]), str(part[1])))
        elif part[0] == "array":
            out.append(("array", tuple(part[1]), str(part[2])))
        elif part[0] == "scalar":
            out.append(("array", (), "float32"))
        elif part[0] == "static":
            out.append(("static", part[2]))
    return tuple(out)


def _emit(graph, name, free, values, consts, be, as_tuple=True):
    from .codegen.emit import emit

    bound = {}
    src = emit(graph, name, be.name, be.HELPERS, constants=[v for v in graph.inputs if v in free], bound=bound,
               as_tuple=as_tuple)
    for n, v in bound.items():
        if n in consts and consts[n] is not values[id(v)]:
            new = f"{n}_{name}"
            src = _rename_global(src, n, new)
            n = new
        consts[n] = values[id(v)]
    return src


def _rename_global(src, old, new):
    import libcst as cst

    class Rename(cst.CSTTransformer):
        def leave_Name(self, node, updated):
            return updated.with_changes(value=new) if updated.value == old else updated

    return cst.parse_module(src).visit(Rename()).code


def _module(cf, be, parts, consts, table_fwd, table_vg, table_vjp):
    import libcst as cst

    from .codegen.template import literal

    header = (f'"""Generated by transgrad.export from `{cf.__name__}`: its forward and gradient code for the\n'
              f'traces seen, with their guards. Needs only {be.MODULE}."""\n')
    helpers = "\n\n".join(inspect.getsource(h).rstrip() for h in be.EXPORT_HELPERS)
    runtime_src = inspect.getsource(runtime).split('"""', 2)[2].strip()
    imports = "".join(f"{line}\n" for line in (f"import {be.MODULE} as xp",) + be.IMPORTS)
    lines = [header, imports, runtime_src, "", helpers, ""]
    lines += [_const_line(n, a).rstrip() for n, a in consts.items()]
    lines += ["", "\n\n".join(p.rstrip() for p in parts), ""]
    for table, name in ((table_fwd, "FORWARD"), (table_vg, "VALUE_AND_GRAD"), (table_vjp, "VALUE_AND_VJP")):
        entries = cst.List([cst.Element(cst.Tuple([cst.Element(literal(sig)), cst.Element(cst.Name(fn)),
                                                   cst.Element(literal(tuple(guards)))]))
                            for sig, fn, guards in table])
        lines.append(cst.Module([cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], entries)])]).code)
    lines.append(
        "\n\ndef forward(*args):\n"
        '    """The function\'s outputs, from the exported trace that fits `args`."""\n'
        "    out = dispatch(FORWARD, args, GuardFailed)\n"
        "    return out[0] if len(out) == 1 else out\n"
        "\n\ndef value_and_grad(*args):\n"
        '    """(value, *gradients) with respect to the differentiable arguments."""\n'
        "    value, *grads = dispatch(VALUE_AND_GRAD, args, GuardFailed)\n"
        "    return (value, grads[0]) if len(grads) == 1 else (value, tuple(grads))\n"
        "\n\ndef value_and_vjp(*args):\n"
        '    """For a non-scalar output: args end with the output\'s cotangent; (value, *gradients)."""\n'
        "    value, *grads = dispatch(VALUE_AND_VJP, args, GuardFailed)\n"
        "    return (value, grads[0]) if len(grads) == 1 else (value, tuple(grads))\n")
    source = "\n".join(lines)
    cst.parse_module(source)  # the module must be valid Python
    return source
