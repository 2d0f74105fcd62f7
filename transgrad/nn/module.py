"""`Module` and `Parameter`, as PyTorch's: attribute registration, parameters, state
dicts, train/eval, hooks; and the containers `Sequential`, `ModuleList`, `ModuleDict`."""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator, NamedTuple

import numpy as np

from .._state import no_grad
from ..tensor import Tensor, alias, tensor


class Parameter(Tensor):
    """A tensor that is a module's parameter: assigning one to a Module attribute registers
    it, and it requires grad unless told otherwise. It shares `data`'s storage."""

    __slots__ = ()

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        data = tensor([]) if data is None else data
        self._data = data._data if isinstance(data, Tensor) else np.asarray(data)
        self._requires_grad, self._grad, self.grad_fn = False, None, None
        self._version_cell, self._base, self._accumulator, self._source, self._hooks = None, None, None, None, None
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model: assign Parameters, buffers and submodules as
    attributes, and define `forward`.

    >>> import transgrad as tg
    >>> class Net(tg.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = tg.nn.Linear(2, 1)
    ...     def forward(self, x):
    ...         return self.fc(x).relu()
    >>> [name for name, _ in Net().named_parameters()]
    ['fc.weight', 'fc.bias']
    """

    def __init__(self):
        for name in ("_parameters", "_buffers", "_modules", "_forward_hooks", "_forward_pre_hooks"):
            object.__setattr__(self, name, OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- attributes ----
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called")
        params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
        if isinstance(value, (Parameter, Module)):
            home = params if isinstance(value, Parameter) else modules
            for table in (params, buffers, modules):
                if table is not home:  # a replaced entry keeps its place in its own table
                    table.pop(name, None)
            d.pop(name, None)
            home[name] = value
        elif name in params or name in modules:
            if value is not None:
                what = "parameter" if name in params else "child module"
                raise TypeError(f"cannot assign {type(value).__name__!r} as {what} {name!r} "
                                f"({'nn.Parameter' if name in params else 'nn.Module'} or None expected)")
            (params if name in params else modules)[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__!r} as buffer {name!r} (Tensor or None expected)")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for table in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[table]:
                del self.__dict__[table][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._parameters[name] = param

    def register_buffer(self, name: str, value: Tensor | None, persistent: bool = True) -> None:
        self._buffers[name] = value
        transient = self.__dict__.setdefault("_non_persistent", set())  # not in state_dict, as PyTorch's
        (transient.discard if persistent else transient.add)(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._modules[name] = module

    register_module = add_module

    # ---- what it holds ----
    def named_modules(self, memo=None, prefix=""):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self) -> Iterator[Module]:
        return (m for _, m in self.named_children())

    def _named(self, table, prefix, recurse):
        seen = set()
        for mod_prefix, m in (self.named_modules(prefix=prefix) if recurse else [(prefix, self)]):
            for name, t in getattr(m, table).items():
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        return self._named("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        return self._named("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        return (b for _, b in self.named_buffers(recurse=recurse))

    # ---- what a compiled function reads of it (NOTE [sources]) ----
    _TABLES = ("_parameters", "_buffers", "_modules", "_forward_hooks", "_forward_pre_hooks")

    def __transgrad_children__(self):
        """Its parameters, buffers, submodules and other attributes, by the names `forward` uses."""
        d = self.__dict__
        for table in self._TABLES[:3]:
            yield from ((k, v) for k, v in d[table].items() if v is not None)
        yield from ((k, v) for k, v in d.items() if k not in self._TABLES)

    def __transgrad_state__(self):
        """What a trace bakes in of this module itself: its class, train()/eval() mode, which
        parameters, buffers and submodules it has, its hooks and its other attributes
        (tensors aside: a trace reads those at every call)."""
        d = self.__dict__
        def names(table):  # each entry's own state is guarded where the search finds it
            return ", ".join(f"{k}=None" if v is None else f"{k}: {type(v).__name__}" if table == "_modules" else k
                             for k, v in d[table].items())

        return (("class", type(self)), ("training", self.training), ("parameters", names("_parameters")),
                ("buffers", names("_buffers")), ("submodules", names("_modules")),
                ("hooks", tuple(d["_forward_pre_hooks"].values()) + tuple(d["_forward_hooks"].values())),
                *((k, v) for k, v in d.items() if k not in self._TABLES and k != "training" and not isinstance(v, Tensor)))

    # ---- modes and state ----
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:  # unconditionally: a compiled step then need not look at .grad
                p.grad = None
            elif p.grad is not None:
                p.grad.detach().zero_()

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        out = OrderedDict() if destination is None else destination
        for name, t in self._state(f"{prefix}." if prefix else ""):
            out[name] = t if keep_vars else alias(t)
        return out

    def _state(self, prefix):
        """(name, tensor) as PyTorch's state_dict lists them: per module its parameters, then its
        buffers, then its submodules'; a tied tensor under every name it has."""
        transient = self.__dict__.get("_non_persistent", ())
        for table in (self._parameters, self._buffers):
            yield from ((prefix + n, t) for n, t in table.items() if t is not None and n not in transient)
        for n, m in self._modules.items():
            if m is not None:
                yield from m._state(f"{prefix}{n}.")

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy the values of `state_dict` into this module's parameters and buffers."""
        own = OrderedDict(self._state(""))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}: missing keys {missing}, "
                               f"unexpected keys {unexpected}")
        with no_grad():
            for k, t in own.items():
                if k in state_dict:
                    value = state_dict[k]
                    if tuple(value.shape) != t.shape:
                        raise RuntimeError(f"size mismatch for {k}: copying a param with shape {tuple(value.shape)}, "
                                           f"the shape in current model is {t.shape}")
                    t.copy_(value)
        return IncompatibleKeys(missing, unexpected)

    def apply(self, fn) -> Module:
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, *args, **kwargs) -> Module:
        """Move or cast parameters and buffers (the CPU is the only device: a cast, or nothing)."""
        dtype = kwargs.get("dtype") or next((a for a in args if isinstance(a, (np.dtype, type))), None)
        if dtype is not None:
            with no_grad():
                for t in list(self.parameters()) + list(self.buffers()):
                    if t.dtype.kind == "f":
                        t._data = t._data.astype(dtype)
        return self

    def float(self) -> Module:
        return self.to(np.dtype("float32"))

    def double(self) -> Module:
        return self.to(np.dtype("float64"))

    def cpu(self) -> Module:
        return self

    # ---- calling ----
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required \"forward\" function")

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            r = hook(self, args)
            if r is not None:
                args = r if isinstance(r, tuple) else (r,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            r = hook(self, args, out)
            if r is not None:
                out = r
        return out

    def register_forward_hook(self, hook):
        return _Handle(self._forward_hooks, hook)

    def register_forward_pre_hook(self, hook):
        return _Handle(self._forward_pre_hooks, hook)

    # ---- printing ----
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        children = [f"({n}): " + repr(m).replace("\n", "\n  ") for n, m in self.named_children()]
        extra = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


class _Handle:
    """What registering a hook returns: `.remove()` unregisters it."""

    _next = 0

    def __init__(self, table, hook):
        self.table, self.id = table, _Handle._next
        _Handle._next += 1
        table[self.id] = hook

    def remove(self):
        self.table.pop(self.id, None)


class Sequential(Module):
    """Modules applied in order."""

    def __init__(self, *modules):
        super().__init__()
        items = modules[0].items() if len(modules) == 1 and isinstance(modules[0], OrderedDict) else (
            (str(i), m) for i, m in enumerate(modules))
        for name, m in items:
            self.add_module(name, m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return Sequential(*mods[i]) if isinstance(i, slice) else mods[i]

    def __setitem__(self, i: int, module: Module) -> None:
        setattr(self, list(self._modules)[i], module)

    def __delitem__(self, i) -> None:
        names = list(self._modules)
        for name in (names[i] if isinstance(i, slice) else [names[i]]):
            del self._modules[name]
        kept = list(self._modules.values())  # renumbered, as PyTorch's
        self._modules.clear()
        for j, m in enumerate(kept):
            self._modules[str(j)] = m

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self


class IncompatibleKeys(NamedTuple):
    """What load_state_dict found missing and unexpected (a tuple, as PyTorch's)."""

    missing_keys: list
    unexpected_keys: list


class ModuleList(Module):
    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return ModuleList(mods[i]) if isinstance(i, slice) else mods[i]

    def __setitem__(self, i, module):
        self.add_module(list(self._modules)[i], module)  # IndexError past the end, as a list's

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    def __init__(self, modules=None):
        super().__init__()
        for k, m in (modules or {}).items():
            self.add_module(k, m)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()
