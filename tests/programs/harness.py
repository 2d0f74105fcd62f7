"""Shared helpers for the user programs in tests/programs (GitHub issue 9).

Every program is written once, the way a PyTorch user writes it, against a namespace `lib`
(either `torch` or `transgrad`), and run

- under PyTorch 2.13 on CPU: the oracle (`TORCH`), a test-only dependency;
- under transgrad in each mode of `MODES`:
    eager          define-by-run, `loss.backward()`
    compile-numpy  the loss (or the whole function) wrapped in `tg.compile`, `.backward()` on its result
    compile-jax    the same with `tg.compile(fn, backend="jax")`
    grad-numpy     `tg.grad` / `tg.value_and_grad` (backend="numpy"), updates written functionally
    grad-jax       the same with backend="jax"

The same NumPy arrays (float32) feed both libraries. A mode that does not apply to a program
is left out with `modes(<mode>="why")`: the reason is part of the test source; nothing is skipped
silently, nothing is marked xfail.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import transgrad as tg

MODES = ("eager", "compile-numpy", "compile-jax", "grad-numpy", "grad-jax")


class Mode:
    """How a program computes gradients: `kind` is torch, eager, compile or grad."""

    def __init__(self, name):
        self.name = name
        if name == "torch":
            self.lib, self.kind, self.backend = torch, "torch", None
        else:
            assert name in MODES, name
            kind, _, backend = name.partition("-")
            self.lib, self.kind, self.backend = tg, kind, backend or "numpy"

    @property
    def backward_style(self):
        """True when the program calls `.backward()` and reads `.grad` (torch, eager, compiled)."""
        return self.kind in ("torch", "eager", "compile")

    @property
    def functional(self):
        return self.kind == "grad"

    def compile(self, fn):
        """What a user who compiles writes (`tg.compile(fn, backend=...)`); the function itself
        in eager transgrad and under PyTorch."""
        if self.kind == "compile":
            return tg.compile(fn, backend=self.backend)
        return fn

    def grad(self, fn, argnums=0):
        assert self.kind == "grad", self.name
        return tg.grad(fn, argnums=argnums, backend=self.backend)

    def value_and_grad(self, fn, argnums=0):
        assert self.kind == "grad", self.name
        return tg.value_and_grad(fn, argnums=argnums, backend=self.backend)

    def __repr__(self):
        return self.name


TORCH = Mode("torch")


def modes(**not_applicable):
    """pytest parameters for the modes a program runs in. A mode is left out only with a
    reason, given as a keyword (`grad_numpy="..."`); the reason stays in the test's source."""
    for key, why in not_applicable.items():
        assert key.replace("_", "-") in MODES, key
        assert isinstance(why, str) and len(why) > 10, f"say why mode {key} does not apply"
    names = [m for m in MODES if m.replace("-", "_") not in not_applicable]
    return pytest.mark.parametrize("mode", [pytest.param(Mode(m), id=m) for m in names])


# ---- data -------------------------------------------------------------------------------------------
def rng(seed):
    return np.random.default_rng(seed)


def randn(r, *shape, scale=1.0):
    return np.asarray(r.standard_normal(shape) * scale, dtype=np.float32)


def tensors(lib, tree, requires_grad=False):
    """NumPy arrays (in lists, tuples, dicts) -> `lib` tensors in the same structure; other
    Python values (ints, floats, strings) are left as they are."""
    if isinstance(tree, np.ndarray):
        return lib.tensor(tree, requires_grad=requires_grad)
    if isinstance(tree, dict):
        return {k: tensors(lib, v, requires_grad) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tensors(lib, v, requires_grad) for v in tree)
    return tree


def grads_of(tree):
    """The `.grad` of every tensor leaf, in the structure of `tree` (zeros where a leaf got no
    gradient, as `tg.grad` returns)."""
    if isinstance(tree, (torch.Tensor, tg.Tensor)):
        if tree.grad is None:
            return np.zeros(tuple(tree.shape), np.float32)
        return to_np(tree.grad)
    if isinstance(tree, dict):
        return {k: grads_of(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(grads_of(v) for v in tree)
    raise TypeError(f"not a tensor structure: {type(tree)}")


def same_structure(got, like, path="grads"):
    """Assert that `got` (gradients) has the list/tuple/dict structure of `like` (the arguments),
    as `tg.grad` promises; tensors match tensors."""
    if isinstance(like, dict):
        assert isinstance(got, dict) and list(got) == list(like), (
            f"{path}: expected a dict with keys {list(like)}, got {type(got).__name__} {_describe(got)}")
        for k in like:
            same_structure(got[k], like[k], f"{path}[{k!r}]")
    elif isinstance(like, (list, tuple)):
        assert type(got) is type(like), (
            f"{path}: expected a {type(like).__name__} of {len(like)}, got {type(got).__name__} {_describe(got)}")
        assert len(got) == len(like), f"{path}: expected a {type(like).__name__} of {len(like)}, got {len(got)}"
        for i, (g, a) in enumerate(zip(got, like)):
            same_structure(g, a, f"{path}[{i}]")
    else:
        assert isinstance(got, (tg.Tensor, torch.Tensor)), f"{path}: expected a tensor, got {type(got).__name__}"
        assert tuple(got.shape) == tuple(like.shape), f"{path}: shape {tuple(got.shape)} != {tuple(like.shape)}"


def _describe(x):
    if isinstance(x, (tg.Tensor, torch.Tensor)):
        return f"(a tensor of shape {tuple(x.shape)})"
    if isinstance(x, (list, tuple)):
        return f"of {len(x)}"
    return ""


def to_np(x):
    """Tensors of either library (in lists, tuples, dicts) -> NumPy arrays, same structure."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, tg.Tensor):
        return np.asarray(x.detach().numpy())
    if isinstance(x, dict):
        return {k: to_np(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_np(v) for v in x)
    if isinstance(x, (bool, int, float, np.number, np.ndarray)):
        return np.asarray(x)
    raise TypeError(f"cannot compare a {type(x).__name__}")


def assert_close(got, want, rtol=1e-4, atol=1e-5, path="result"):
    """`got` (from transgrad) matches `want` (from the oracle): the same structure (list vs
    tuple vs dict, keys, lengths), the same shapes, and close values."""
    got, want = to_np(got), to_np(want)
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: expected a dict, got {type(got).__name__}"
        assert list(got) == list(want), f"{path}: keys {list(got)} != {list(want)}"
        for k in want:
            assert_close(got[k], want[k], rtol, atol, f"{path}[{k!r}]")
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want), f"{path}: expected a {type(want).__name__}, got {type(got).__name__}"
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, rtol, atol, f"{path}[{i}]")
    else:
        assert isinstance(got, np.ndarray), f"{path}: expected an array, got {type(got).__name__}"
        assert got.shape == want.shape, f"{path}: shape {got.shape} != {want.shape}"
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol, err_msg=path)


# ---- running a scalar-valued function in a mode -----------------------------------------------------
def backward_grads(fn, args, argnums, lib):
    """`out = fn(*args); out.backward()` with the arguments in `argnums` as leaves that require
    grad; returns (value, grads) as NumPy, grads in the structure `tg.grad` promises (the
    argument's structure for an int `argnums`, a tuple of them for a tuple)."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    targs = [tensors(lib, a, requires_grad=i in nums) for i, a in enumerate(args)]
    out = fn(*targs)
    out.backward()
    grads = tuple(grads_of(targs[i]) for i in nums)
    return to_np(out), (grads[0] if isinstance(argnums, int) else grads)


def check_function(program, calls, argnums, mode, rtol=1e-4, atol=1e-5):
    """`program(lib)` returns a scalar-valued function. In `mode` the function is made once
    (compiled once, or wrapped once in `tg.value_and_grad`) and called on every argument list
    in `calls` in order, as a user calls it again and again; each value and gradient must match
    PyTorch's `out.backward()` on the same function and data. Returns what `mode` made (for
    `cache_info()`)."""
    ref = program(torch)
    if mode.functional:
        made = mode.value_and_grad(program(tg), argnums)
    else:
        made = mode.compile(program(tg))
    for k, args in enumerate(calls):
        want = backward_grads(ref, args, argnums, torch)
        if mode.functional:
            value, grads = made(*[tensors(tg, a) for a in args])
            got = to_np(value), to_np(grads)
        else:
            got = backward_grads(made, args, argnums, tg)
        assert_close(got[0], want[0], rtol, atol, f"call {k}: value")
        assert_close(got[1], want[1], rtol, atol, f"call {k}: grad")
    return made


# ---- a plain SGD driver ------------------------------------------------------------------------------
def train_sgd(mode, loss, init, data, steps, lr):
    """`steps` of SGD on `loss(*params, *data)`: in the backward-style modes the (compiled) loss
    is called, `.backward()` run and `with no_grad(): p -= lr * p.grad; p.grad.zero_()` applied;
    in the grad modes `tg.value_and_grad(loss, argnums=(0, ..))` and `p = p - lr * g`.
    Returns (losses, params) as NumPy."""
    lib = mode.lib
    data = [tensors(lib, d) for d in data]
    losses = []
    if mode.functional:
        params = list(tensors(lib, init))
        step = mode.value_and_grad(loss, argnums=tuple(range(len(params))))
        for _ in range(steps):
            value, grads = step(*params, *data)
            params = [p - lr * g for p, g in zip(params, grads)]
            losses.append(value.item())
    else:
        params = list(tensors(lib, init, requires_grad=True))
        loss_fn = mode.compile(loss)
        for _ in range(steps):
            value = loss_fn(*params, *data)
            value.backward()
            with lib.no_grad():
                for p in params:
                    p -= lr * p.grad
                    p.grad.zero_()
            losses.append(value.item())
    return to_np(losses), to_np(params)


def check_training(program, init, data, steps, lr, mode, rtol=1e-4, atol=1e-5):
    """`program(lib)` returns a loss of (*params, *data); SGD in `mode` must give PyTorch's
    losses and final parameters."""
    want = train_sgd(TORCH, program(torch), init, data, steps, lr)
    got = train_sgd(mode, program(tg), init, data, steps, lr)
    assert_close(got[0], want[0], rtol, atol, "losses")
    assert_close(got[1], want[1], rtol, atol, "params")
    return want, got
