"""Manual-SGD training loops as PyTorch users write them, over lists and dicts of parameters.

In the backward-style modes (eager, compile-*) the loss is called, `.backward()` fills `.grad`,
and the parameters are updated in place outside the (compiled) loss, exactly as under PyTorch.
In the grad-* modes the same loss goes through `tg.value_and_grad` and the update is written
functionally (`p - lr * g`), as a JAX user writes it; the oracle is PyTorch's backward-style
run of the same loss on the same data, which computes the same numbers.
"""
import numpy as np

from harness import TORCH, assert_close, modes, randn, rng, same_structure, tensors


# ---- 1. linear regression, a list of parameters, `p.data -= lr * p.grad; p.grad.zero_()` -------------
def linreg_loss(params, x, y):
    w, b = params
    pred = x @ w + b
    return ((pred - y) ** 2).mean()


def linreg_data():
    r = rng(1)
    x = randn(r, 16, 3)
    y = x @ np.array([1.5, -2.0, 0.5], np.float32) + 0.3 + randn(r, 16, scale=0.1)
    return x, y, [randn(r, 3, scale=0.1), np.zeros(1, np.float32)]


def train_linreg(mode, steps=6, lr=0.1):
    lib = mode.lib
    x, y, init = linreg_data()
    x, y = lib.tensor(x), lib.tensor(y)
    losses = []
    if mode.functional:
        params = tensors(lib, init)
        step = mode.value_and_grad(linreg_loss)
        for _ in range(steps):
            loss, grads = step(params, x, y)
            same_structure(grads, params)  # [gw, gb] for [w, b]
            params = [p - lr * g for p, g in zip(params, grads)]
            losses.append(loss.item())
    else:
        params = tensors(lib, init, requires_grad=True)
        loss_fn = mode.compile(linreg_loss)
        for _ in range(steps):
            loss = loss_fn(params, x, y)
            loss.backward()
            for p in params:
                p.data -= lr * p.grad
                p.grad.zero_()
            losses.append(loss.item())
    return losses, params


@modes()
def test_linear_regression_list_of_params(mode):
    want_losses, want_params = train_linreg(TORCH)
    got_losses, got_params = train_linreg(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="params")


# ---- 2. logistic regression, a dict of parameters, `with no_grad(): p -= lr * p.grad; p.grad = None` -
def logreg_loss(params, x, t):
    z = x @ params["w"] + params["b"]
    p = z.sigmoid()
    return -(t * p.log() + (1 - t) * (1 - p).log()).mean()


def train_logreg(mode, steps=5, lr=0.5):
    lib = mode.lib
    r = rng(2)
    x = randn(r, 20, 2)
    t = (x[:, 0] - 0.5 * x[:, 1] > 0).astype(np.float32)
    init = {"w": randn(r, 2, scale=0.1), "b": np.zeros((), np.float32)}
    x, t = lib.tensor(x), lib.tensor(t)
    losses = []
    if mode.functional:
        params = tensors(lib, init)
        step = mode.value_and_grad(logreg_loss)
        for _ in range(steps):
            loss, grads = step(params, x, t)
            same_structure(grads, params)  # {"w": gw, "b": gb}
            params = {k: params[k] - lr * grads[k] for k in params}
            losses.append(loss.item())
    else:
        params = tensors(lib, init, requires_grad=True)
        loss_fn = mode.compile(logreg_loss)
        for _ in range(steps):
            loss = loss_fn(params, x, t)
            loss.backward()
            with lib.no_grad():
                for p in params.values():
                    p -= lr * p.grad
                    p.grad = None
            losses.append(loss.item())
        assert all(p.is_leaf and p.requires_grad for p in params.values())
    return losses, params


@modes()
def test_logistic_regression_dict_of_params(mode):
    want_losses, want_params = train_logreg(TORCH)
    got_losses, got_params = train_logreg(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="params")


# ---- 3. a 2-layer MLP, softmax cross-entropy from log_softmax and indexing ---------------------------
def make_mlp_loss(lib):
    def mlp_loss(params, x, labels):
        W1, b1, W2, b2 = params
        h = (x @ W1 + b1).relu()
        logits = h @ W2 + b2
        logp = logits.log_softmax(dim=1)
        return -logp[lib.arange(len(labels)), labels].mean()

    return mlp_loss


def train_mlp(mode, steps=4, lr=0.5):
    lib = mode.lib
    r = rng(3)
    x = randn(r, 12, 4)
    labels = r.integers(0, 3, size=12).astype(np.int64)
    init = [randn(r, 4, 8, scale=0.5), np.zeros(8, np.float32), randn(r, 8, 3, scale=0.5), np.zeros(3, np.float32)]
    x, labels = lib.tensor(x), lib.tensor(labels)
    losses = []
    if mode.functional:
        params = tensors(lib, init)
        step = mode.value_and_grad(make_mlp_loss(lib))
        for _ in range(steps):
            loss, grads = step(params, x, labels)
            same_structure(grads, params)
            params = [p - lr * g for p, g in zip(params, grads)]
            losses.append(loss.item())
    else:
        params = tensors(lib, init, requires_grad=True)
        loss_fn = mode.compile(make_mlp_loss(lib))
        for _ in range(steps):
            loss = loss_fn(params, x, labels)
            loss.backward()
            for p in params:
                p.data -= lr * p.grad
                p.grad.data.zero_()
            losses.append(loss.item())
    return losses, params


@modes()
def test_mlp_softmax_cross_entropy(mode):
    want_losses, want_params = train_mlp(TORCH)
    got_losses, got_params = train_mlp(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="params")


# ---- 4. "Learning PyTorch with Examples": y = a + b x + c x^2 + d x^3 fitted to sin(x) ----------------
def poly_loss(a, b, c, d, x, y):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    return (y_pred - y).pow(2).sum()


def train_poly(mode, steps=5, learning_rate=1e-5):
    lib = mode.lib
    xs = np.linspace(-np.pi, np.pi, 200, dtype=np.float32)
    x, y = lib.tensor(xs), lib.tensor(np.sin(xs))
    r = rng(4)
    init = [randn(r) for _ in range(4)]  # four 0-d arrays, as torch.randn(())
    losses = []
    if mode.functional:
        a, b, c, d = tensors(lib, init)
        step = mode.value_and_grad(poly_loss, argnums=(0, 1, 2, 3))
        for _ in range(steps):
            loss, (ga, gb, gc, gd) = step(a, b, c, d, x, y)
            a, b, c, d = a - learning_rate * ga, b - learning_rate * gb, c - learning_rate * gc, d - learning_rate * gd
            losses.append(loss.item())
    else:
        a, b, c, d = tensors(lib, init, requires_grad=True)
        loss_fn = mode.compile(poly_loss)
        for _ in range(steps):
            loss = loss_fn(a, b, c, d, x, y)
            loss.backward()
            with lib.no_grad():
                a -= learning_rate * a.grad
                b -= learning_rate * b.grad
                c -= learning_rate * c.grad
                d -= learning_rate * d.grad
                a.grad = None
                b.grad = None
                c.grad = None
                d.grad = None
            losses.append(loss.item())
    return losses, [a, b, c, d]


@modes()
def test_polynomial_fit_tutorial(mode):
    want_losses, want_params = train_poly(TORCH)
    got_losses, got_params = train_poly(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, rtol=1e-4, atol=1e-5, path="a, b, c, d")


# ---- 5. early stopping: train until the loss falls under a tolerance ---------------------------------
def train_until(mode, tol, max_steps=25, lr=0.05):
    lib = mode.lib
    x, y, init = linreg_data()
    x, y = lib.tensor(x), lib.tensor(y)
    losses = []
    if mode.functional:
        params = tensors(lib, init)
        step = mode.value_and_grad(linreg_loss)
        for _ in range(max_steps):
            loss, grads = step(params, x, y)
            same_structure(grads, params)
            losses.append(loss.item())
            if loss.item() < tol:
                break
            params = [p - lr * g for p, g in zip(params, grads)]
    else:
        params = tensors(lib, init, requires_grad=True)
        loss_fn = mode.compile(linreg_loss)
        for _ in range(max_steps):
            loss = loss_fn(params, x, y)
            losses.append(loss.item())
            if loss < tol:  # a tensor comparison, as users write it
                break
            loss.backward()
            with lib.no_grad():
                for p in params:
                    p.sub_(lr * p.grad)
                    p.grad.zero_()
    return losses, params


@modes()
def test_early_stopping(mode):
    tol = 1.0
    want_losses, want_params = train_until(TORCH, tol)
    # the oracle's stopping step is well defined: no loss within 0.1% of the tolerance
    assert 2 < len(want_losses) < 25 and min(abs(v - tol) for v in want_losses) > 1e-3 * tol
    got_losses, got_params = train_until(mode, tol)
    assert len(got_losses) == len(want_losses), "stopped at another step"
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="params")


# ---- 6. gradient clipping by global norm and momentum buffers -------------------------------------------
def make_tanh_net_loss(lib):
    def loss_fn(params, x, y):
        W1, W2 = params
        return ((x @ W1).tanh() @ W2 - y).pow(2).mean()

    return loss_fn


def train_clipped_momentum(mode, steps=5, lr=0.2, mu=0.9, max_norm=0.5):
    lib = mode.lib
    r = rng(6)
    x, y = randn(r, 10, 3), randn(r, 10, 2, scale=3.0)
    init = [randn(r, 3, 5), randn(r, 5, 2)]
    x, y = lib.tensor(x), lib.tensor(y)
    losses, clipped = [], []
    if mode.functional:
        params = tensors(lib, init)
        velocity = [lib.zeros_like(p) for p in params]
        step = mode.value_and_grad(make_tanh_net_loss(lib))
        for _ in range(steps):
            loss, grads = step(params, x, y)
            same_structure(grads, params)
            total = sum((g ** 2).sum() for g in grads).sqrt()
            if total > max_norm:
                grads = [g * (max_norm / (total + 1e-6)) for g in grads]
                clipped.append(True)
            else:
                clipped.append(False)
            velocity = [mu * v + g for v, g in zip(velocity, grads)]
            params = [p - lr * v for p, v in zip(params, velocity)]
            losses.append(loss.item())
    else:
        params = tensors(lib, init, requires_grad=True)
        velocity = [lib.zeros_like(p) for p in params]
        loss_fn = mode.compile(make_tanh_net_loss(lib))
        for _ in range(steps):
            loss = loss_fn(params, x, y)
            loss.backward()
            total = sum((p.grad ** 2).sum() for p in params).sqrt()
            if total > max_norm:
                for p in params:
                    p.grad.mul_(max_norm / (total + 1e-6))
                clipped.append(True)
            else:
                clipped.append(False)
            with lib.no_grad():
                for p, v in zip(params, velocity):
                    v.mul_(mu).add_(p.grad)
                    p.sub_(lr * v)
            for p in params:
                p.grad.zero_()
            losses.append(loss.item())
    return losses, clipped, params


@modes()
def test_gradient_clipping_and_momentum(mode):
    want_losses, want_clipped, want_params = train_clipped_momentum(TORCH)
    assert any(want_clipped)  # the data exercise the clipping branch
    got_losses, got_clipped, got_params = train_clipped_momentum(mode)
    assert got_clipped == want_clipped
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="params")


# ---- 7. a WGAN-style critic with weight clipping (`p.data.clamp_(-c, c)`) ------------------------------
def critic_loss(params, real, fake):
    W, b = params
    return (fake @ W + b).mean() - (real @ W + b).mean()


def train_critic(mode, steps=4, lr=0.05, c=0.1):
    lib = mode.lib
    r = rng(7)
    real, fake = randn(r, 8, 3) + 1.0, randn(r, 8, 3)
    init = [randn(r, 3, 1, scale=0.05), np.zeros(1, np.float32)]
    real, fake = lib.tensor(real), lib.tensor(fake)
    losses = []
    if mode.functional:
        params = tensors(lib, init)
        step = mode.value_and_grad(critic_loss)
        for _ in range(steps):
            loss, grads = step(params, real, fake)
            same_structure(grads, params)
            params = [(p - lr * g).clamp(-c, c) for p, g in zip(params, grads)]
            losses.append(loss.item())
    else:
        params = tensors(lib, init, requires_grad=True)
        loss_fn = mode.compile(critic_loss)
        for _ in range(steps):
            for p in params:
                if p.grad is not None:
                    p.grad.data.zero_()
            loss = loss_fn(params, real, fake)
            loss.backward()
            for p in params:
                p.data.add_(-lr * p.grad)
                p.data.clamp_(-c, c)
            losses.append(loss.item())
    return losses, params


@modes()
def test_wgan_critic_weight_clipping(mode):
    want_losses, want_params = train_critic(TORCH)
    got_losses, got_params = train_critic(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="params")


# ---- 8. a tg.value_and_grad wrapper made inside the training loop, each step --------------------------
def make_batch_loss(lib, executions):
    def batch_loss(params, xb, yb):
        executions.append(1)  # the Python body runs when transgrad traces it, not on a cache hit
        W, b = params
        return ((xb @ W + b - yb) ** 2).mean()

    return batch_loss


def train_wrapper_per_step(mode, epochs=2, lr=0.1):
    lib = mode.lib
    r = rng(8)
    X, Y = randn(r, 16, 3), randn(r, 16, 1)
    init = [randn(r, 3, 1), np.zeros(1, np.float32)]
    executions = []
    batch_loss = make_batch_loss(lib, executions)
    losses, wrappers = [], []
    if mode.functional:
        params = tensors(lib, init)
        for _ in range(epochs):
            for i in range(0, 16, 4):
                xb, yb = lib.tensor(X[i:i + 4]), lib.tensor(Y[i:i + 4])
                # a new wrapper (and a new lambda over this batch) every step, as users write it
                vg = mode.value_and_grad(lambda ps: batch_loss(ps, xb, yb))
                loss, grads = vg(params)
                same_structure(grads, params)
                params = [p - lr * g for p, g in zip(params, grads)]
                losses.append(loss.item())
                wrappers.append(vg)
    else:
        params = tensors(lib, init, requires_grad=True)
        # the backward-style modes make the (compiled) loss once: tg.compile is meant to be used
        # that way; the per-step wrapper is a tg.grad / tg.value_and_grad idiom
        loss_fn = mode.compile(batch_loss)
        for _ in range(epochs):
            for i in range(0, 16, 4):
                xb, yb = lib.tensor(X[i:i + 4]), lib.tensor(Y[i:i + 4])
                loss = loss_fn(params, xb, yb)
                loss.backward()
                with lib.no_grad():
                    for p in params:
                        p -= lr * p.grad
                        p.grad.zero_()
                losses.append(loss.item())
        wrappers.append(loss_fn)
    return losses, params, wrappers, len(executions)


@modes()
def test_value_and_grad_wrapper_made_each_step(mode):
    want_losses, want_params, _, _ = train_wrapper_per_step(TORCH)
    got_losses, got_params, wrappers, executions = train_wrapper_per_step(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="params")
    if mode.kind != "eager":
        # one path, traced once: every later step reuses it, whichever wrapper object it went through
        # (issue 14: cache by the underlying function, not by the wrapper)
        assert executions == 1, f"the loss was traced {executions} times in {len(got_losses)} steps"
        info = wrappers[-1].cache_info()
        assert info.size == 1 and info.retraces == 0, info
        if mode.kind == "compile":  # one compiled object: its counters cover every step
            assert info.misses == 1 and info.hits == len(got_losses) - 1, info


# ---- 9. per-parameter gradient clamping with `register_hook` ---------------------------------------------
def train_with_hooks(mode, steps=4, lr=0.1, clip=0.05):
    lib = mode.lib
    x, y, init = linreg_data()
    x, y = lib.tensor(x), lib.tensor(y)
    params = tensors(lib, init, requires_grad=True)
    handles = [p.register_hook(lambda g: g.clamp(-clip, clip)) for p in params]
    loss_fn = mode.compile(linreg_loss)
    losses = []
    for step in range(steps):
        if step == 2:  # clipping off for the last steps
            for h in handles:
                h.remove()
        loss = loss_fn(params, x, y)
        loss.backward()
        with lib.no_grad():
            for p in params:
                p -= lr * p.grad
                p.grad.zero_()
        losses.append(loss.item())
    return losses, params


@modes(grad_numpy="hooks are registered on the leaf tensors that .backward() reaches; tg.grad returns "
                  "gradients without touching leaves (clip the returned gradients instead, as program 6 does)",
       grad_jax="hooks are registered on leaf tensors that .backward() reaches; tg.grad returns gradients")
def test_gradient_clamp_hooks(mode):
    want_losses, want_params = train_with_hooks(TORCH)
    got_losses, got_params = train_with_hooks(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, path="params")
