"""Unique, readable Python names for generated code (cf. FX's _Namespace)."""
import builtins
import functools
import keyword
import re

RESERVED = set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist) | {"xp"}


@functools.lru_cache(maxsize=4096)
def _base(hint):
    base = re.sub(r"\W", "_", hint or "v")
    return base if base.isidentifier() else "v_" + base


class Namespace:
    def __init__(self, reserved=()):
        self.used = set(RESERVED) | set(reserved)
        self.counts = {}

    def create(self, hint: str) -> str:
        base = _base(hint)
        name = base
        while name in self.used:
            self.counts[base] = n = self.counts.get(base, 0) + 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name
