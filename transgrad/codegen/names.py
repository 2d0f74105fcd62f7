"""Unique, readable Python names for generated code (cf. FX's _Namespace)."""
import builtins
import functools
import keyword
import re

RESERVED = set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist) | {"xp"}


@functools.lru_cache(maxsize=4096)
def identifier(hint):
    """`hint` made a valid Python identifier (`<lambda>` -> `lambda`, `2x` -> `v_2x`)."""
    base = re.sub(r"\W", "_", (hint or "v").strip("<>"))
    return base if base.isidentifier() else "v_" + base


class Namespace:
    def __init__(self, reserved=()):
        self.used = set(RESERVED) | set(reserved)
        self.counts = {}

    def create(self, hint: str) -> str:
        base = identifier(hint)
        name = base
        while name in self.used:
            self.counts[base] = n = self.counts.get(base, 0) + 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name
