"""The core stays within its line budget (tools/sz.py)."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_core_line_budget():
    spec = importlib.util.spec_from_file_location("sz", os.path.join(ROOT, "tools", "sz.py"))
    sz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sz)
    core, library = sz.main()
    assert 1000 < core <= sz.BUDGET, f"the core has {core} lines of code; the budget is {sz.BUDGET}"
    assert library <= sz.LIBRARY_BUDGET, f"nn and optim have {library} lines of code; the budget is {sz.LIBRARY_BUDGET}"


def test_import_and_eager_ops_load_neither_jax_nor_libcst():
    # `import transgrad` stays cheap: JAX loads with the JAX backend, LibCST when code is first
    # generated (a backward, a compiled function), numpy.random with the first random tensor
    import subprocess
    import sys

    code = ("import sys, transgrad as tg\n"
            "loaded = lambda: sorted(m for m in ('jax', 'libcst', 'numpy.random') if m in sys.modules)\n"
            "print(loaded())\n"
            "x = tg.ones(2, 2, requires_grad=True)\n"
            "y = (x * 2 + x.exp()).sum()\n"
            "print(loaded(), y.grad_fn.name())\n"
            "y.backward()\n"
            "print(loaded(), x.grad.tolist(), tg.randn(2).shape)\n"
            "print(loaded())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "[]"
    assert out[1] == "[] SumBackward0"
    e = 2 + 2.718281828459045
    assert out[2].startswith("['libcst'] ") and str([[e, e], [e, e]])[:8] in out[2]
    assert out[3] == "['libcst', 'numpy.random']"
