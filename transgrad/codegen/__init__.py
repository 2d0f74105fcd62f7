"""Code generation: op templates, names, and Graph -> Python source via LibCST."""
