"""Backends are data plus one function: an array namespace, helper functions that
generated code may call, and `compile(source, name) -> namespace` (NOTE [backends])."""


def get_backend(name):
    """The backend module for `name` ("numpy" or "jax")."""
    if not isinstance(name, str):
        return name
    if name == "numpy":
        from . import numpy

        return numpy
    if name == "jax":
        from . import jax

        return jax
    raise ValueError(f"unknown backend {name!r}; use 'numpy' or 'jax'")
