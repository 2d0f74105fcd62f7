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
