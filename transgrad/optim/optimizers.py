"""PyTorch's optimizers, step for step: the same updates in the same order of float32
operations, on the parameters' storage (in place, not recorded)."""
from __future__ import annotations

import copy
import math

from .._state import enable_grad, mode, no_grad
from ..tensor import Tensor, creation


class Optimizer:
    """Holds `param_groups` (dicts of parameters and their hyperparameters) and a `state`
    per parameter; `step()` updates the parameters from their `.grad`."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: dict = {}
        self.param_groups: list = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        for g in groups if isinstance(groups[0], dict) else [{"params": groups}]:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:  # unconditionally: a compiled step then need not look at .grad
                    p.grad = None
                elif p.grad is not None:
                    p.grad.detach().zero_()

    def step(self, closure=None):
        if mode.tracer is not None and mode.tracer.compiling:
            raise RuntimeError(f"{type(self).__name__}.step() inside a compiled function: call it after the compiled "
                               "step returns (the gradients its backward computes reach .grad then)")
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, p.grad.detach(), group, self.state.setdefault(p, {}))
        return loss

    def _update(self, p, g, group, state):
        raise NotImplementedError

    def state_dict(self) -> dict:
        """The state (per parameter index) and the groups' hyperparameters, as PyTorch's."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        state = {index[id(p)]: {k: (v.clone() if isinstance(v, Tensor) else v) for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index and s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        params = [p for g in self.param_groups for p in g["params"]]
        for group, saved in zip(self.param_groups, state_dict["param_groups"]):
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
        self.state = {params[i]: {k: (v.clone() if isinstance(v, Tensor) else v) for k, v in s.items()}
                      for i, s in state_dict["state"].items()}

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines + [")"])


class SGD(Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, maximize: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def _update(self, p, g, group, state):
        g = -g if group["maximize"] else g
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        momentum = group["momentum"]
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.clone()
            else:
                buf.mul_(momentum).add_(g * (1 - group["dampening"]))
            g = g + momentum * buf if group["nesterov"] else buf
        p.sub_(g * group["lr"])


class Adam(Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0,
                 amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    decoupled = False  # AdamW: the weight decay shrinks the parameter, not the gradient

    def _update(self, p, g, group, state):
        g = -g if group["maximize"] else g
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if wd and self.decoupled:
            p.mul_(1 - lr * wd)
        elif wd:
            g = g + wd * p
        if not state:
            state["step"] = 0
            state["exp_avg"], state["exp_avg_sq"] = creation.zeros_like(p), creation.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = creation.zeros_like(p)
        state["step"] += 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(b1).add_(g * (1 - b1))
        v.mul_(b2).add_(g * g * (1 - b2))
        if group["amsgrad"]:
            v = state["max_exp_avg_sq"].copy_(creation.maximum(state["max_exp_avg_sq"], v))
        bias1, bias2 = 1 - b1 ** state["step"], 1 - b2 ** state["step"]
        denom = v.sqrt() / math.sqrt(bias2) + eps
        p.sub_(m / denom * (lr / bias1))


class AdamW(Adam):
    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)


class RMSprop(Optimizer):
    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0,
                 momentum: float = 0, centered: bool = False, maximize: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _update(self, p, g, group, state):
        g = -g if group["maximize"] else g
        alpha, eps = group["alpha"], group["eps"]
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        if not state:
            state["step"], state["square_avg"] = 0, creation.zeros_like(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = creation.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = creation.zeros_like(p)
        state["step"] += 1
        sq = state["square_avg"].mul_(alpha).add_(g * g * (1 - alpha))
        if group["centered"]:
            ga = state["grad_avg"].mul_(alpha).add_(g * (1 - alpha))
            avg = (sq - ga * ga).sqrt() + eps
        else:
            avg = sq.sqrt() + eps
        if group["momentum"] > 0:
            buf = state["momentum_buffer"].mul_(group["momentum"]).add_(g / avg)
            p.sub_(buf * group["lr"])
        else:
            p.sub_(g / avg * group["lr"])
