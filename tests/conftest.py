import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import pytest


@pytest.fixture(autouse=True)
def _no_traces_from_other_tests():
    """Compiled functions of one code object share their traces (and `cache_info` counts
    them): each test starts with none, so that what it counts does not depend on the tests
    that ran before it."""
    from transgrad.compiled import function

    function._SHARED.clear()
