"""tg.nn and tg.optim against PyTorch: the same layers with the same weights give the same
outputs and gradients, and the optimizers the same parameters step after step."""
import math

import numpy as np
import pytest
import torch

import transgrad as tg
from transgrad import nn

rng = np.random.default_rng(0)


def same_weights(mine, theirs):
    """Copy a transgrad module's parameters and buffers into the PyTorch twin."""
    state = {k: torch.tensor(np.asarray(v.array)) for k, v in mine.state_dict().items()}
    theirs.load_state_dict(state)


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.detach().array)


def check(mine, theirs, *inputs, grad_inputs=True, rtol=1e-5, atol=1e-5):
    """Forward, then backward of a random projection: outputs, input and parameter gradients."""
    same_weights(mine, theirs)
    xs = [tg.tensor(a, requires_grad=grad_inputs and a.dtype.kind == "f") for a in inputs]
    ts = [torch.tensor(a, requires_grad=grad_inputs and a.dtype.kind == "f") for a in inputs]
    out, want = mine(*xs), theirs(*ts)
    np.testing.assert_allclose(_np(out), _np(want), rtol=rtol, atol=atol)
    v = rng.standard_normal(tuple(want.shape)).astype(np.float32)
    (out * tg.tensor(v)).sum().backward()
    (want * torch.tensor(v)).sum().backward()
    for x, t in zip(xs, ts):
        if t.grad is not None:
            np.testing.assert_allclose(_np(x.grad), _np(t.grad), rtol=rtol, atol=atol)
    for (name, p), (_, q) in zip(mine.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(_np(p.grad), _np(q.grad), rtol=rtol, atol=atol, err_msg=name)


X = rng.standard_normal((4, 5)).astype(np.float32)
IMG = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
LAYERS = {
    "linear": (lambda L: L.nn.Linear(5, 3), [X]),
    "linear-no-bias": (lambda L: L.nn.Linear(5, 3, bias=False), [X]),
    "conv2d": (lambda L: L.nn.Conv2d(3, 4, 3), [IMG]),
    "conv2d-stride-padding": (lambda L: L.nn.Conv2d(3, 2, (3, 2), stride=2, padding=1), [IMG]),
    "maxpool": (lambda L: L.nn.MaxPool2d(2), [IMG]),
    "maxpool-stride-padding": (lambda L: L.nn.MaxPool2d(3, stride=2, padding=1), [IMG]),
    "avgpool": (lambda L: L.nn.AvgPool2d(2), [IMG]),
    "flatten": (lambda L: L.nn.Flatten(), [IMG]),
    "sequential-cnn": (lambda L: L.nn.Sequential(L.nn.Conv2d(3, 4, 3, padding=1), L.nn.ReLU(), L.nn.MaxPool2d(2),
                                                 L.nn.Flatten(), L.nn.Linear(4 * 3 * 3, 5), L.nn.Tanh()), [IMG]),
    "relu": (lambda L: L.nn.ReLU(), [X]),
    "tanh": (lambda L: L.nn.Tanh(), [X]),
    "sigmoid": (lambda L: L.nn.Sigmoid(), [X]),
    "softmax": (lambda L: L.nn.Softmax(dim=1), [X]),
    "log-softmax": (lambda L: L.nn.LogSoftmax(dim=0), [X]),
    "leaky-relu": (lambda L: L.nn.LeakyReLU(0.1), [X]),
    "silu": (lambda L: L.nn.SiLU(), [X]),
    "layernorm": (lambda L: L.nn.LayerNorm(5), [X]),
    "batchnorm-train": (lambda L: L.nn.BatchNorm1d(5), [X]),
    "batchnorm-eval": (lambda L: L.nn.BatchNorm1d(5).eval(), [X]),
    "dropout-eval": (lambda L: L.nn.Dropout(0.5).eval(), [X]),
    "embedding": (lambda L: L.nn.Embedding(10, 3), [np.array([[1, 2, 2], [9, 0, 1]])]),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_match_pytorch(name):
    make, inputs = LAYERS[name]
    mine, theirs = make(tg), make(torch)
    check(mine, theirs, *inputs, grad_inputs=name != "embedding")
    for (k, b), (_, c) in zip(mine.named_buffers(), theirs.named_buffers()):  # BatchNorm's running statistics
        np.testing.assert_allclose(_np(b), _np(c), rtol=1e-5, atol=1e-6, err_msg=k)


class LossModule:
    def __init__(self, L, make, target):
        self.loss, self.target = make(L), target

    def __call__(self, x):
        return self.loss(x, self.target)


LOGITS = rng.standard_normal((5, 4)).astype(np.float32)
CLASSES = np.array([0, 3, 1, 1, 2])
PROBS = rng.uniform(0.05, 0.95, (5, 4)).astype(np.float32)
LOSSES = {
    "mse": (lambda L: L.nn.MSELoss(), lambda L: L.tensor(PROBS)),
    "mse-sum": (lambda L: L.nn.MSELoss(reduction="sum"), lambda L: L.tensor(PROBS)),
    "l1": (lambda L: L.nn.L1Loss(), lambda L: L.tensor(PROBS)),
    "cross-entropy": (lambda L: L.nn.CrossEntropyLoss(), lambda L: L.tensor(CLASSES)),
    "cross-entropy-weight": (lambda L: L.nn.CrossEntropyLoss(weight=L.tensor([1.0, 2.0, 0.5, 1.5])),
                             lambda L: L.tensor(CLASSES)),
    "cross-entropy-ignore": (lambda L: L.nn.CrossEntropyLoss(ignore_index=1), lambda L: L.tensor(CLASSES)),
    "cross-entropy-smoothing": (lambda L: L.nn.CrossEntropyLoss(label_smoothing=0.1), lambda L: L.tensor(CLASSES)),
    "cross-entropy-none": (lambda L: L.nn.CrossEntropyLoss(reduction="none"), lambda L: L.tensor(CLASSES)),
    "cross-entropy-probs": (lambda L: L.nn.CrossEntropyLoss(), lambda L: L.tensor(PROBS / PROBS.sum(1, keepdims=True))),
    "bce-with-logits": (lambda L: L.nn.BCEWithLogitsLoss(), lambda L: L.tensor(PROBS)),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_match_pytorch(name):
    make, target = LOSSES[name]
    x = tg.tensor(LOGITS, requires_grad=True)
    t = torch.tensor(LOGITS, requires_grad=True)
    mine, theirs = make(tg)(x, target(tg)), make(torch)(t, target(torch))
    np.testing.assert_allclose(_np(mine), _np(theirs), rtol=1e-5, atol=1e-6)
    mine.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(_np(x.grad), _np(t.grad), rtol=1e-5, atol=1e-6)


def test_nll_and_bce_match_pytorch():
    logp = torch.tensor(LOGITS).log_softmax(1)
    x, t = tg.tensor(_np(logp), requires_grad=True), logp.clone().requires_grad_()
    for L, a in ((tg, x), (torch, t)):
        L.nn.functional.nll_loss(a, L.tensor(CLASSES)).backward()
    np.testing.assert_allclose(_np(x.grad), _np(t.grad), rtol=1e-6)
    p, q = tg.tensor(PROBS, requires_grad=True), torch.tensor(PROBS, requires_grad=True)
    for L, a in ((tg, p), (torch, q)):
        L.nn.BCELoss()(a, L.tensor(PROBS[::-1].copy())).backward()
    np.testing.assert_allclose(_np(p.grad), _np(q.grad), rtol=1e-5)


# ---- the Module interface ----
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])
        self.register_buffer("scale", tg.ones(8))
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x):
        h = self.act(self.fc1(x))
        for block in self.blocks:
            h = (block(h) * self.scale).tanh()
        return self.fc2(h)


def test_module_registration_and_state_dict():
    tg.manual_seed(1)
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "fc1.weight", "fc1.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
        "fc2.weight", "fc2.bias"]
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "blocks", "fc2"]
    # PyTorch's order: a module's own parameters and buffers (Net's `scale`), then its submodules'
    assert list(net.state_dict()) == ["scale"] + [n for n, _ in net.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad and p.is_leaf for p in net.parameters())
    other = Net()
    other.load_state_dict(net.state_dict())
    x = tg.randn(3, 4)
    np.testing.assert_array_equal(other(x).detach().numpy(), net(x).detach().numpy())
    with pytest.raises(RuntimeError, match="missing keys"):
        other.load_state_dict({"fc1.weight": tg.zeros(8, 4)})
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_forward_hooks_and_parameter_repr():
    lin = nn.Linear(2, 1)
    seen = []
    handle = lin.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    lin(tg.ones(3, 2))
    handle.remove()
    lin(tg.ones(3, 2))
    assert seen == [(3, 1)]
    assert repr(nn.Parameter(tg.ones(1))).startswith("Parameter containing:\ntensor([1.], requires_grad=True)")


def test_default_initialisation_bounds():
    tg.manual_seed(0)
    lin, conv = nn.Linear(100, 50), nn.Conv2d(4, 6, 3)
    for p, fan_in in ((lin.weight, 100), (lin.bias, 100), (conv.weight, 36), (conv.bias, 36)):
        a = p.detach().numpy()
        bound = 1 / math.sqrt(fan_in)
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.5 * bound  # uniform(-b, b), PyTorch's bound
    w = lin.weight.detach().numpy()
    assert abs(w.mean()) < 0.05 * 0.1 and abs(w.std() - 0.1 / math.sqrt(3)) < 0.005  # uniform(-0.1, 0.1)
    tg.manual_seed(0)
    np.testing.assert_array_equal(nn.Linear(100, 50).weight.detach().numpy(), lin.weight.detach().numpy())


# ---- optimizers ----
OPTIMIZERS = {
    "sgd": lambda L, ps: L.optim.SGD(ps, lr=0.1),
    "sgd-momentum": lambda L, ps: L.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "sgd-nesterov": lambda L, ps: L.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda L, ps: L.optim.Adam(ps, lr=0.01),
    "adam-amsgrad-wd": lambda L, ps: L.optim.Adam(ps, lr=0.01, weight_decay=0.1, amsgrad=True),
    "adamw": lambda L, ps: L.optim.AdamW(ps, lr=0.01),
    "rmsprop": lambda L, ps: L.optim.RMSprop(ps, lr=0.01),
    "rmsprop-centered-momentum": lambda L, ps: L.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    "param-groups": lambda L, ps: L.optim.SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.01}], lr=0.1,
                                             momentum=0.9),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_match_pytorch(name):
    tg.manual_seed(3)
    mine = tg.nn.Sequential(tg.nn.Linear(4, 6), tg.nn.Tanh(), tg.nn.Linear(6, 3))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    same_weights(mine, theirs)
    opt_mine = OPTIMIZERS[name](tg, list(mine.parameters()))
    opt_theirs = OPTIMIZERS[name](torch, list(theirs.parameters()))
    x, y = rng.standard_normal((8, 4)).astype(np.float32), rng.integers(0, 3, 8)
    for step in range(5):
        for L, model, opt in ((tg, mine, opt_mine), (torch, theirs, opt_theirs)):
            opt.zero_grad()
            L.nn.functional.cross_entropy(model(L.tensor(x)), L.tensor(y)).backward()
            opt.step()
        for (n, p), (_, q) in zip(mine.named_parameters(), theirs.named_parameters()):
            np.testing.assert_allclose(_np(p), _np(q), rtol=1e-5, atol=1e-6, err_msg=f"{n} after step {step}")
    state = opt_mine.state_dict()
    assert len(state["param_groups"]) == len(opt_theirs.state_dict()["param_groups"])
    assert set(state["state"]) == set(opt_theirs.state_dict()["state"])


def test_zero_grad_set_to_none_false_keeps_zeros():
    lin = tg.nn.Linear(2, 1)
    opt = tg.optim.SGD(lin.parameters(), lr=0.1)
    lin(tg.ones(1, 2)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum().item() == 0


@pytest.mark.parametrize("padding", ["same", "valid", 1])
def test_conv2d_padding_strings_and_unbatched_pooling_match_pytorch(padding):
    x0 = np.random.default_rng(3).standard_normal((2, 3, 6, 5)).astype(np.float32)
    theirs, mine = torch.nn.Conv2d(3, 4, 3, padding=padding), tg.nn.Conv2d(3, 4, 3, padding=padding)
    mine.load_state_dict({k: tg.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    xt, xg = torch.tensor(x0, requires_grad=True), tg.tensor(x0, requires_grad=True)
    yt, yg = theirs(xt), mine(xg)
    (yt ** 2).sum().backward()
    (yg ** 2).sum().backward()
    np.testing.assert_allclose(yg.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5)
    for pool in ("max_pool2d", "avg_pool2d"):  # an unbatched (C, H, W) input
        want = getattr(torch.nn.functional, pool)(torch.tensor(x0[0]), 2)
        np.testing.assert_allclose(getattr(tg.nn.functional, pool)(tg.tensor(x0[0]), 2).numpy(), want.numpy(), rtol=1e-6)


def test_module_containers_and_load_state_dict_result_as_in_pytorch():
    layers = tg.nn.ModuleList([tg.nn.Linear(2, 2), tg.nn.Linear(2, 3)])
    layers[-1] = tg.nn.Linear(2, 4)
    assert layers[1].out_features == 4 and [n for n, _ in layers.named_parameters()][-1] == "1.bias"
    heads = tg.nn.ModuleDict({"a": tg.nn.Linear(1, 1), "b": tg.nn.Linear(1, 2)})
    del heads["a"]
    assert list(heads.keys()) == ["b"]
    result = tg.nn.Linear(2, 2).load_state_dict({"weight": tg.ones(2, 2)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == []
    assert tuple(result) == (["bias"], [])  # still a pair


def test_state_dict_keys_and_order_are_pytorchs_tied_weights_included():
    def language_model(L):
        class LM(L.nn.Module):
            def __init__(self):
                super().__init__()
                self.emb, self.norm = L.nn.Embedding(5, 3), L.nn.BatchNorm1d(3)
                self.head = L.nn.Linear(3, 5, bias=False)
                self.head.weight = self.emb.weight  # tied: listed under both names

        return LM()

    theirs, mine = language_model(torch), language_model(tg)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    result = mine.load_state_dict({k: tg.tensor(v.numpy()) for k, v in theirs.state_dict().items()})  # strict
    assert tuple(result) == ([], [])
    np.testing.assert_array_equal(mine.head.weight.detach().numpy(), theirs.emb.weight.detach().numpy())
    assert mine.head.weight is mine.emb.weight


def test_a_non_persistent_buffer_is_left_out_of_state_dict_as_in_pytorch():
    def model(L):
        class WithCache(L.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = L.nn.Linear(2, 1)
                self.register_buffer("cache", L.zeros(3), persistent=False)
                self.register_buffer("steps", L.zeros(1))

        return WithCache()

    theirs, mine = model(torch), model(tg)
    assert list(mine.state_dict()) == list(theirs.state_dict()) == ["steps", "lin.weight", "lin.bias"]
    assert [n for n, _ in mine.named_buffers()] == ["cache", "steps"]
    mine.load_state_dict({k: tg.tensor(v.numpy()) for k, v in theirs.state_dict().items()})  # strict
