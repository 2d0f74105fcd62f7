import math

import numpy as np

from ..ir import Graph, Var
from ..ops import OPS


MIN_SIZE = 1 << 16  # elements: below this NumPy's small-array allocations are cheaper than `out=`


def reuse_buffers(g: Graph, min_size=MIN_SIZE) -> Graph:
    """Let an elementwise equation write its result into the buffer of an input that dies there.

    NOTE [buffer reuse]: `y * 0.75` becomes `xp.multiply(y, 0.75, out=y)` when y is not
    needed afterwards (the row's `ufunc` names NumPy's function), so large arrays are not
    allocated (and page-faulted) once per temporary. Only buffers this function allocated
    itself are reused: never an input, a constant, a view or a 0-d value; the result is the
    same array, so values are identical. Arrays under `min_size` elements are left alone:
    for them the allocation is cheap.
    """
    from .liveness import last_uses

    dels = last_uses(g)
    owned = set()  # Vars whose buffer a ufunc of this graph allocated
    out = []
    for i, e in enumerate(g.eqns):
        if getattr(OPS.get(e.op), "ufunc", None) is not None:  # its NumPy form can write into an `out=` buffer
            if math.prod(e.out.shape) >= min_size and np.dtype(e.out.dtype).kind == "f":
                dying = {id(v) for v in dels.get(i, ())}
                for k, x in enumerate(e.ins):
                    if (isinstance(x, Var) and id(x) in owned and id(x) in dying and x.shape == e.out.shape
                            and x.dtype == e.out.dtype):
                        e = e._replace(params=e.params + (("into", k),))
                        break
            owned.add(id(e.out))
        out.append(e)
    return g.replace(eqns=tuple(out))
