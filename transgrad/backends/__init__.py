"""Backends are data plus one function: an array namespace, helper functions that
generated code may call, and `compile(source, name) -> namespace` (NOTE [backends])."""
