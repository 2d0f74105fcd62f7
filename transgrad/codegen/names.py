"""Unique, readable Python names for generated code (cf. FX's _Namespace)."""
import builtins
import keyword
import re

RESERVED = set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist) | {"xp"}


class Namespace:
    def __init__(self, reserved=()):
        self.used = set(RESERVED) | set(reserved)
        self.counts = {}

    def create(self, hint: str) -> str:
        base = re.sub(r"\W", "_", hint or "v")
        if not base.isidentifier():
            base = "v_" + base
        name = base
        while name in self.used:
            self.counts[base] = n = self.counts.get(base, 0) + 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name
