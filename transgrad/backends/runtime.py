"""What an exported module needs besides its generated functions: the dispatcher that
picks the trace whose signature and guards fit the inputs. `tg.export` copies this
module's source (it imports nothing but the standard library and the array namespace)."""
import base64
import io


class NoTraceError(RuntimeError):
    """No exported trace fits these inputs."""


def load_array(text):
    import numpy

    return numpy.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)


def _count(n):
    """A loop bound as the compiled program takes it (its guards read `.item()`)."""
    import numpy

    return numpy.asarray(n, numpy.int32)


def _describe(x):
    shape = getattr(x, "shape", None)
    return f"{getattr(x, 'dtype', type(x).__name__)}{list(shape)}" if shape is not None else repr(x)


def dispatch(traces, args, guard_failed):
    """Run the first trace whose input signature matches `args` and whose guards hold."""
    failures = []
    for signature, fn, guards in traces:
        if len(args) != len(signature):
            continue
        ok = True
        for a, want in zip(args, signature):
            if want[0] == "array":
                ok = ok and tuple(getattr(a, "shape", ())) == want[1] and str(getattr(a, "dtype", "")) == want[2]
            elif want[0] == "count":  # it bounds a loop: any int the program takes (NOTE [loops])
                ok = ok and type(a) is int and 0 <= a < 2 ** 31
            else:
                ok = ok and a == want[1]
        if not ok:
            continue
        try:
            return fn(*[_count(a) if want[0] == "count" else a for a, want in zip(args, signature) if want[0] != "static"])
        except guard_failed as e:
            failures.append(guards[e.index] if 0 <= e.index < len(guards) else "a guard")
    if failures:
        raise NoTraceError("these inputs take a path that was not exported: " + "; ".join(
            f"{g} decided differently" for g in failures) + ". Export again with an example that takes this path")
    raise NoTraceError("no exported trace has this input signature: (" + ", ".join(map(_describe, args)) + ")")
