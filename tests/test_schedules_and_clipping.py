"""Learning-rate schedulers and gradient clipping, in training loops written as PyTorch users
write them, against PyTorch step by step (eager, and the loss compiled on NumPy and JAX)."""
import numpy as np
import pytest
import torch

import transgrad as tg

SCHEDULES = {
    "step": lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.3),
    "exponential": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.01),  # past T_max it rises again, as PyTorch's
    "lambda": lambda m, o: m.LambdaLR(o, lr_lambda=lambda epoch: 1 / (1 + epoch)),
}


@pytest.mark.parametrize("by_hand", [False, True], ids=["", "lr-changed-by-hand"])
@pytest.mark.parametrize("names", [(n,) for n in sorted(SCHEDULES)] + [("step", "exponential"), ("lambda", "exponential"),
                                                                      ("cosine", "multistep")], ids="+".join)
def test_learning_rates_of_two_groups_over_twenty_epochs_are_pytorchs(names, by_hand):
    # schedulers chain (each scales the rate the group has now), and a rate changed by hand carries on
    lrs = []
    for L in (torch, tg):
        opt = L.optim.SGD([{"params": [L.zeros(1, requires_grad=True)]},
                           {"params": [L.zeros(1, requires_grad=True)], "lr": 0.3}], lr=1.0)
        scheds = [SCHEDULES[n](L.optim.lr_scheduler, opt) for n in names]
        seen = [[g["lr"] for g in opt.param_groups]]
        for epoch in range(20):
            opt.step()
            for sched in scheds:
                sched.step()
            if by_hand and epoch == 6:
                for g in opt.param_groups:
                    g["lr"] *= 0.1
            seen.append([g["lr"] for g in opt.param_groups])
        lrs.append(np.array(seen))
    np.testing.assert_allclose(lrs[1], lrs[0], rtol=1e-12)


def test_a_scheduler_state_dict_pickles_and_resumes():
    import pickle

    opt = tg.optim.SGD([tg.zeros(1, requires_grad=True)], lr=1.0)
    sched = tg.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5 ** epoch)
    for _ in range(3):
        sched.step()
    state = pickle.loads(pickle.dumps(sched.state_dict()))  # the lambda is not part of it, as in PyTorch
    again = tg.optim.lr_scheduler.LambdaLR(tg.optim.SGD([tg.zeros(1, requires_grad=True)], lr=1.0), lambda e: 0.5 ** e)
    again.load_state_dict(state)
    again.step()
    assert again.get_last_lr() == [0.5 ** 4]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_pytorch(norm_type):
    rng = np.random.default_rng(6)
    g0 = [rng.standard_normal((3, 2)) * 4, rng.standard_normal(5)]
    results = []
    for L in (torch, tg):
        ps = [L.tensor(g, requires_grad=True) for g in g0]
        for p, g in zip(ps, g0):
            p.grad = L.tensor(g.copy())
        total = L.nn.utils.clip_grad_norm_(ps, max_norm=2.0, norm_type=norm_type)
        results.append((float(total), [p.grad.numpy().copy() for p in ps]))
    (want_total, want), (got_total, got) = results
    np.testing.assert_allclose(got_total, want_total, rtol=1e-12)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    w = tg.tensor([0.1, -0.2], requires_grad=True)  # under the bound: left as it is
    w.grad = tg.tensor([0.3, 0.4])
    assert float(tg.nn.utils.clip_grad_norm_(w, 1.0)) == pytest.approx(0.5)
    np.testing.assert_allclose(w.grad.numpy(), [0.3, 0.4], rtol=1e-6)


def _train(L, mode, steps=12):
    """An MLP regression: SGD with momentum, a StepLR schedule, the gradient norm clipped to 0.25
    and each gradient value to 0.08 (the two clippings PyTorch users write)."""
    rng = np.random.default_rng(7)
    x0, y0 = rng.standard_normal((16, 4)).astype(np.float32), rng.standard_normal((16, 1)).astype(np.float32)
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    model = reference if L is torch else tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.Tanh(), tg.nn.Linear(8, 1))
    if L is tg:  # PyTorch's initial weights
        model.load_state_dict({k: tg.tensor(v.detach().numpy()) for k, v in reference.state_dict().items()})
    opt = L.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    sched = L.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    loss_fn = (lambda x, y: ((model(x) - y) ** 2).mean())
    if mode != "eager":
        loss_fn = tg.compile(loss_fn, backend=mode)
    x, y, losses = L.tensor(x0), L.tensor(y0), []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(x, y)
        loss.backward()
        L.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        L.nn.utils.clip_grad_value_(model.parameters(), 0.08)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return np.array(losses), [p.detach().numpy() if L is torch else np.asarray(p.detach().array)
                              for p in model.parameters()]


@pytest.mark.parametrize("mode", ["eager", "numpy", "jax"])
def test_a_clipped_scheduled_training_loop_matches_pytorch(mode):
    want_losses, want_params = _train(torch, "eager")
    got_losses, got_params = _train(tg, mode)
    np.testing.assert_allclose(got_losses, want_losses, rtol=1e-4, atol=1e-6)
    for a, b in zip(got_params, want_params):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
