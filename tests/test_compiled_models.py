"""Compiled models and compiled training steps, against PyTorch running the same program.

`tg.compile(model)`, and a step that calls `opt.zero_grad()`, `loss.backward()` (and even
updates weights by hand) inside the compiled function, on both backends: the `.grad`s,
weights, buffers and losses are PyTorch's, parameters are read at every call, and a
change of structure or of train()/eval() retraces with an explanation (NOTE [effects],
NOTE [sources]).
"""
import re

import numpy as np
import pytest
import torch

import transgrad as tg
import transgrad.nn as nn
import transgrad.nn.functional as F
from transgrad.trace import TraceError

BACKENDS = ["numpy", "jax"]
RTOL, ATOL = 2e-4, 2e-5


def mlp(lib, batchnorm=False):
    layers = [lib.nn.Linear(6, 16), lib.nn.Tanh(), lib.nn.Linear(16, 8), lib.nn.ReLU(), lib.nn.Linear(8, 3)]
    if batchnorm:
        layers.insert(3, lib.nn.BatchNorm1d(8))
    return lib.nn.Sequential(*layers)


def twin(model):
    """The same model in PyTorch, with the same weights and buffers."""
    t = mlp(torch, batchnorm=any(isinstance(m, nn.BatchNorm1d) for m in model.modules()))
    t.load_state_dict({k: torch.tensor(np.array(v.detach().numpy())) for k, v in model.state_dict().items()})
    return t


def data(seed=0, n=12):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6)).astype(np.float32), rng.integers(0, 3, n)


def close(ours, theirs, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(ours.detach().numpy()), theirs.detach().numpy(), rtol=rtol, atol=atol)


def same_parameters(model, tmodel, rtol=RTOL, atol=ATOL):
    for (name, p), (tname, tp) in zip(model.named_parameters(), tmodel.named_parameters()):
        assert name == tname
        close(p, tp, rtol, atol)


def torch_step(tmodel, topt, xa, ya, set_to_none=True):
    """One eager PyTorch training step: the oracle of a compiled one."""
    topt.zero_grad(set_to_none=set_to_none)
    loss = torch.nn.functional.cross_entropy(tmodel(torch.tensor(xa)), torch.tensor(ya))
    loss.backward()
    topt.step()
    return loss


OPTIMIZERS = {
    "sgd": lambda lib, ps: lib.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda lib, ps: lib.optim.Adam(ps, lr=0.01),
    "adamw": lambda lib, ps: lib.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    "rmsprop": lambda lib, ps: lib.optim.RMSprop(ps, lr=0.01),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_compiled_training_step_matches_pytorch(backend, opt_name):
    tg.manual_seed(0)
    model = mlp(tg)
    tmodel = twin(model)
    opt, topt = OPTIMIZERS[opt_name](tg, model.parameters()), OPTIMIZERS[opt_name](torch, tmodel.parameters())

    @tg.compile(backend=backend)
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    for i in range(5):
        xa, ya = data(i)
        loss = step(tg.tensor(xa), tg.tensor(ya))
        opt.step()
        close(loss, torch_step(tmodel, topt, xa, ya))
        for p, tp in zip(model.parameters(), tmodel.parameters()):
            close(p.grad, tp.grad)
    same_parameters(model, tmodel)
    info = step.cache_info()  # traced once (a trace of another test's closure of `step` does not apply)
    assert info.misses + info.retraces == 1 and info.hits == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_without_zero_grad_accumulates_in_place_as_pytorch(backend):
    """`.grad` accumulates across calls into the same tensor; the first call finds .grad
    None, the next ones read it (one retrace, explained)."""
    tg.manual_seed(1)
    model = mlp(tg)
    tmodel = twin(model)
    step = tg.compile(lambda x, y: F.cross_entropy(model(x), y).backward(), backend=backend)
    xa, ya = data(3)
    held = None
    for _ in range(3):
        step(tg.tensor(xa), tg.tensor(ya))
        torch.nn.functional.cross_entropy(tmodel(torch.tensor(xa)), torch.tensor(ya)).backward()
        for p, tp in zip(model.parameters(), tmodel.parameters()):
            close(p.grad, tp.grad)
        g = model[0].weight.grad
        assert held is None or g is held  # in place, as PyTorch's AccumulateGrad
        held = g
    assert step.cache_info().misses == 1 and step.cache_info().retraces == 1
    assert len(step.retrace_log) == 1
    assert re.fullmatch(r"<lambda>: `model\.\d\.(weight|bias)\.grad` was None when traced, and is a tensor now",
                        step.retrace_log[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_model_reads_parameters_at_every_call(backend):
    """`tg.compile(model)` in an eager training loop: the optimizer's updates, an in-place
    edit and a newly bound Parameter all reach the next call; grads flow to the model."""
    tg.manual_seed(2)
    model = mlp(tg)
    tmodel = twin(model)
    cmodel = tg.compile(model, backend=backend)
    opt, topt = tg.optim.SGD(model.parameters(), lr=0.2), torch.optim.SGD(tmodel.parameters(), lr=0.2)
    for i in range(4):
        xa, ya = data(i)
        opt.zero_grad()
        loss = F.cross_entropy(cmodel(tg.tensor(xa)), tg.tensor(ya))
        loss.backward()
        opt.step()
        close(loss, torch_step(tmodel, topt, xa, ya))
    same_parameters(model, tmodel)
    with tg.no_grad():
        model[2].weight.mul_(0.5)
    with torch.no_grad():
        tmodel[2].weight.mul_(0.5)
    model[4].bias = nn.Parameter(tg.ones(3))
    tmodel[4].bias = torch.nn.Parameter(torch.ones(3))
    xa, _ = data(9)
    close(cmodel(tg.tensor(xa)), tmodel(torch.tensor(xa)))
    assert cmodel.cache_info().misses == 1 and cmodel.cache_info().retraces == 0


def test_generated_code_is_named_after_modules_and_parameters():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)

        def forward(self, x):
            return self.fc2(self.fc1(x).relu())

    net = Net()
    opt = tg.optim.SGD(net.parameters(), lr=0.1)
    code = tg.compile(net).code(tg.ones(3, 4))
    assert code.startswith("def Net_forward(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias):")
    assert "def Net_backward(" in code and "g_fc1_weight" in code and "captured" not in code

    @tg.compile
    def step(x):
        opt.zero_grad()
        loss = net(x).pow(2).mean()
        loss.backward()
        return loss

    code = step.code(tg.ones(3, 4))
    assert code.startswith("def step_forward(x, net_fc1_weight, net_fc1_bias, net_fc2_weight, net_fc2_bias):")
    assert code.splitlines()[-1].strip() == "return (loss, g_net_fc1_weight, g_net_fc1_bias, g_net_fc2_weight, " \
                                            "g_net_fc2_bias)"
    assert all(p.grad is None for p in net.parameters())  # showing the code ran nothing the caller sees


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_eval_and_structure_changes_retrace_with_an_explanation(backend):
    tg.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    cmodel = tg.compile(model, backend=backend)
    x = tg.tensor(data(0)[0])
    cmodel(x)
    model.eval()
    np.testing.assert_allclose(cmodel(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert cmodel.retrace_log == ["Sequential: `Sequential` changed its training True -> False"]
    model[2] = nn.Sequential(nn.Linear(8, 3), nn.Tanh())
    model.eval()
    np.testing.assert_allclose(cmodel(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert cmodel.retrace_log[-1] == ("Sequential: `Sequential` changed its submodules '0: Linear, 1: Dropout, 2: "
                                      "Linear' -> '0: Linear, 1: Dropout, 2: Sequential'; `2` is a Sequential now (a "
                                      "Linear when traced)")
    model[1].p = 0.25  # a plain attribute of a module is part of what a trace bakes in
    model.train()
    tg.manual_seed(0)
    got = cmodel(x).detach().numpy()
    tg.manual_seed(0)
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert cmodel.retrace_log[-1] == ("Sequential: `Sequential` changed its training False -> True; `1` changed its "
                                      "training False -> True, p 0.5 -> 0.25")
    assert cmodel.cache_info().retraces == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_running_statistics_in_a_compiled_step_match_pytorch(backend):
    tg.manual_seed(4)
    model = mlp(tg, batchnorm=True)
    tmodel = twin(model)
    opt, topt = tg.optim.SGD(model.parameters(), lr=0.1), torch.optim.SGD(tmodel.parameters(), lr=0.1)

    @tg.compile(backend=backend)
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt_free = loss.detach()
        return opt_free

    for i in range(3):
        xa, ya = data(i)
        loss = step(tg.tensor(xa), tg.tensor(ya))
        opt.step()
        close(loss, torch_step(tmodel, topt, xa, ya))
    bn, tbn = model[3], tmodel[3]
    close(bn.running_mean, tbn.running_mean)
    close(bn.running_var, tbn.running_var)
    assert bn.num_batches_tracked.item() == tbn.num_batches_tracked.item() == 3
    same_parameters(model, tmodel)
    model.eval()
    tmodel.eval()
    xa, _ = data(7)
    close(tg.compile(model, backend=backend)(tg.tensor(xa)), tmodel(torch.tensor(xa)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_draws_a_new_mask_at_every_call_as_eager(backend):
    model = nn.Sequential(nn.Linear(6, 32), nn.Dropout(0.5))
    cmodel = tg.compile(model, backend=backend)
    x = tg.tensor(data(0)[0])
    outs = []
    for seed in (5, 6):
        tg.manual_seed(seed)
        compiled = cmodel(x).detach().numpy()
        tg.manual_seed(seed)
        eager = model(x).detach().numpy()
        np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)
        outs.append(compiled)
    assert ((outs[0] == 0) != (outs[1] == 0)).any()  # another mask
    assert 0.3 < (outs[0] == 0).mean() < 0.7


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_written_sgd_inside_a_compiled_step_matches_pytorch(backend):
    """The tutorial's loop, the whole step compiled: backward, then `w -= lr * w.grad` and
    `w.grad.zero_()` under no_grad, on weights the function reads from its globals."""
    rng = np.random.default_rng(0)
    x0, y0 = rng.standard_normal((16, 3)).astype(np.float32), rng.standard_normal((16, 1)).astype(np.float32)
    w0, b0 = rng.standard_normal((3, 1)).astype(np.float32), np.zeros(1, np.float32)

    def run(lib, compile_):
        w = lib.tensor(w0, requires_grad=True)
        b = lib.tensor(b0, requires_grad=True)
        x, y = lib.tensor(x0), lib.tensor(y0)

        def step(x, y, lr):
            nonlocal w
            loss = ((x @ w + b - y) ** 2).mean()
            loss.backward()
            with lib.no_grad():
                w -= lr * w.grad
                b.sub_(lr * b.grad)
                w.grad.zero_()
                b.grad = None
            return loss

        step = compile_(step)
        losses = [step(x, y, 0.1).item() for _ in range(6)]
        return losses, w, b, step

    losses, w, b, step = run(tg, lambda f: tg.compile(f, backend=backend))
    tlosses, tw, tb, _ = run(torch, lambda f: f)
    np.testing.assert_allclose(losses, tlosses, rtol=RTOL)
    close(w, tw)
    close(b, tb)
    assert b.grad is None and np.all(w.grad.numpy() == 0)
    assert step.cache_info().misses == 1 and step.cache_info().retraces == 1  # w.grad: None, then zeros


def test_a_failed_guard_changes_nothing():
    """The step's path depends on the loss; a call that takes the other path is retraced
    and its gradients are added once, not twice."""
    w = tg.tensor([1.0, -2.0], requires_grad=True)
    tw = torch.tensor([1.0, -2.0], requires_grad=True)

    def step(lib, w, x):
        loss = (w * x).sum()
        if loss > 0:
            loss = loss * 3
        loss.backward()
        return loss

    cstep = tg.compile(lambda x: step(tg, w, x))
    for xa in ([1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 3.0]):
        cstep(tg.tensor(xa))
        step(torch, tw, torch.tensor(xa))
        close(w.grad, tw.grad)
    assert cstep.cache_info().retraces >= 1


def test_effects_are_refused_where_they_could_not_work():
    w = tg.ones(3, requires_grad=True)
    opt = tg.optim.SGD([w], lr=0.1)

    def loss_and_backward(x):
        loss = (w * x).sum()
        loss.backward()
        return loss

    with pytest.raises(TypeError, match="grad: loss_and_backward changes tensors from outside it"):
        tg.grad(loss_and_backward)(tg.ones(3))
    with pytest.raises(TypeError, match="export: loss_and_backward changes tensors from outside it"):
        tg.export(loss_and_backward, tg.ones(3))
    loss = tg.compile(loss_and_backward)(tg.ones(3))
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()

    @tg.compile
    def stepping(x):
        opt.zero_grad()
        (w * x).sum().backward()
        opt.step()

    w.grad = None
    with pytest.raises(RuntimeError, match=r"SGD.step\(\) inside a compiled function"):
        stepping(tg.ones(3))
    assert w.grad is None and np.all(w.detach().numpy() == 1)

    buf = tg.zeros(3)

    @tg.compile
    def records_into_buffer(x):
        buf.add_(x * w)  # history into a tensor that outlives the call
        return buf.sum()

    with pytest.raises(RuntimeError, match="records gradient history into a tensor from outside a compiled function"):
        records_into_buffer(tg.ones(3))
    assert np.all(buf.numpy() == 0) and buf.grad_fn is None and buf._version == 0


def test_a_trace_that_fails_leaves_the_callers_tensors_as_they_were():
    w = tg.ones(3, requires_grad=True)
    w.grad = tg.full((3,), 5.0)
    buf = tg.zeros(3)

    @tg.compile
    def broken(x):
        (w * x).sum().backward()
        with tg.no_grad():
            buf.add_(x)
            w.mul_(2)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        broken(tg.ones(3))
    assert np.all(w.grad.numpy() == 5) and np.all(buf.numpy() == 0) and np.all(w.detach().numpy() == 1)
    assert buf._version == 0 and w._version == 0


def test_showing_the_code_of_a_step_runs_none_of_its_effects():
    model = mlp(tg, batchnorm=True)
    before = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}

    @tg.compile
    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    tg.manual_seed(0)
    expected = tg.rand(4).numpy()
    tg.manual_seed(0)
    xa, ya = data(0)
    assert "g_model_0_weight" in step.code(tg.tensor(xa), tg.tensor(ya))
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.detach().numpy(), before[k])
    np.testing.assert_array_equal(tg.rand(4).numpy(), expected)  # nor did it draw random numbers


def test_zero_grad_keeping_the_tensors_inside_a_compiled_step():
    """`zero_grad(set_to_none=False)` zeros the caller's `.grad` tensors in place."""
    tg.manual_seed(5)
    model = mlp(tg)
    tmodel = twin(model)
    opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.5)

    @tg.compile
    def step(x, y):
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(model(x), y).backward()

    for i in range(3):
        xa, ya = data(i)
        step(tg.tensor(xa), tg.tensor(ya))
        opt.step()
        torch_step(tmodel, topt, xa, ya, set_to_none=False)
    same_parameters(model, tmodel)


def test_a_custom_module_with_a_loop_and_shared_weights_retraces_on_its_trip_count():
    """A module whose forward loops a data-dependent number of times reusing one layer:
    each trip count is a trace; the gradients are PyTorch's."""
    class Repeat(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.mid, self.out = nn.Linear(3, 5), nn.Linear(5, 5), nn.Linear(5, 1)

        def forward(self, x, n):
            h = self.inp(x).clamp(min=0)
            for _ in range(n):
                h = self.mid(h).clamp(min=0)
            return self.out(h)

    tg.manual_seed(6)
    model = Repeat()
    tmodel = torch.nn.Module()
    for name in ("inp", "mid", "out"):
        layer = getattr(model, name)
        t = torch.nn.Linear(layer.in_features, layer.out_features)
        t.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in layer.state_dict().items()})
        setattr(tmodel, name, t)
    cmodel = tg.compile(model)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    for n in (0, 2, 1, 2):
        model.zero_grad()
        tmodel.zero_grad()
        cmodel(tg.tensor(x), n).sum().backward()
        h = tmodel.inp(torch.tensor(x)).clamp(min=0)
        for _ in range(n):
            h = tmodel.mid(h).clamp(min=0)
        tmodel.out(h).sum().backward()
        for name in ("inp", "mid", "out"):
            ours, theirs = getattr(model, name).weight.grad, getattr(tmodel, name).weight.grad
            assert (ours is None) == (theirs is None)
            if ours is not None:
                close(ours, theirs)
    assert cmodel.cache_info().misses == 3


def test_trace_errors_inside_a_module_name_the_users_line():
    class Bad(nn.Module):
        def forward(self, x):
            return x.numpy()

    with pytest.raises(TraceError, match=r"numpy\(\) of a tensor inside a compiled function at .*test_compiled_models"):
        tg.compile(Bad())(tg.ones(2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_digits_training_example_learns_and_shows_its_step(backend):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, os.path.join(root, "examples", "train_digits.py"), "--epochs", "3",
                        "--backend", backend], capture_output=True, text=True, check=True)
    losses = [float(line.split()[-1]) for line in r.stdout.splitlines() if line.startswith("epoch")]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2]
    accuracy = float(re.search(r"test accuracy (\S+)", r.stdout).group(1))
    assert accuracy > 0.8
    assert "def train_step_forward(xb, yb, model_fc1_weight, model_fc1_bias, model_fc2_weight, model_fc2_bias):" \
        in r.stdout
    assert "# grad of: loss = F.cross_entropy(model(xb), yb)" in r.stdout and "g_model_fc1_weight" in r.stdout
    assert "misses=1, retraces=0" in r.stdout
