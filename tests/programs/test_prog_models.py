"""Small models written by hand as in PyTorch tutorials and papers' reference code: a DQN
target with `detach()`, causal self-attention with a boolean-mask fill of `-inf`, an LSTM cell
with sliced gates and `stack`ed outputs, a language model with tied embeddings, Adam written
by hand, validation under `no_grad()` between training steps, and two losses sharing one
forward (`retain_graph=True`)."""
import math

import numpy as np

from harness import TORCH, assert_close, check_function, check_training, modes, randn, rng, same_structure, tensors


# ---- 1. a DQN loss: the target from `q(s').max(dim=1)[0].detach()` -------------------------------------
def dqn_loss(lib):
    def loss(W, b, states, actions, rewards, next_states, done):
        q = states @ W + b
        q_taken = q[lib.arange(len(actions)), actions]
        q_next = (next_states @ W + b).max(dim=1)[0].detach()
        target = rewards + 0.9 * q_next * (1 - done)
        return ((q_taken - target) ** 2).mean()

    return loss


@modes()
def test_dqn_target_with_detach(mode):
    r = rng(81)
    states, next_states = randn(r, 6, 4), randn(r, 6, 4)
    actions = r.integers(0, 3, size=6).astype(np.int64)
    rewards, done = randn(r, 6), np.array([0, 0, 1, 0, 0, 1], np.float32)
    init = [randn(r, 4, 3, scale=0.5), np.zeros(3, np.float32)]
    check_training(dqn_loss, init, [states, actions, rewards, next_states, done], steps=3, lr=0.1, mode=mode)


# ---- 2. causal self-attention: `scores[mask] = float("-inf")`, softmax, weighted sum -----------------------
def causal_attention(lib):
    def loss(Wq, Wk, Wv, x, target):
        T, d = x.shape[0], Wq.shape[1]
        q, k, v = x @ Wq, x @ Wk, x @ Wv
        scores = q @ k.t() / math.sqrt(d)
        mask = lib.tensor(np.triu(np.ones((T, T), bool), k=1))
        scores[mask] = float("-inf")
        attn = scores.softmax(dim=-1)
        out = attn @ v
        return ((out - target) ** 2).mean()

    return loss


@modes()
def test_causal_self_attention(mode):
    r = rng(82)
    x, target = randn(r, 5, 4), randn(r, 5, 3)
    init = [randn(r, 4, 3, scale=0.5), randn(r, 4, 3, scale=0.5), randn(r, 4, 3, scale=0.5)]
    check_training(causal_attention, init, [x, target], steps=3, lr=0.2, mode=mode)


# ---- 3. an LSTM cell by hand: gates sliced from one matmul, outputs collected with stack -------------------
def lstm_loss(lib):
    def loss(Wx, Wh, b, xs, target):
        H = Wh.shape[0]
        h = lib.zeros(H)
        c = lib.zeros(H)
        outputs = []
        for t in range(xs.shape[0]):
            gates = xs[t] @ Wx + h @ Wh + b
            i = gates[:H].sigmoid()
            f = gates[H:2 * H].sigmoid()
            g = gates[2 * H:3 * H].tanh()
            o = gates[3 * H:].sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
            outputs.append(h)
        out = lib.stack(outputs)
        return ((out - target) ** 2).mean()

    return loss


@modes()
def test_lstm_cell_by_hand(mode):
    r = rng(83)
    H, D, T = 3, 2, 4
    xs, target = randn(r, T, D), randn(r, T, H, scale=0.5)
    init = [randn(r, D, 4 * H, scale=0.5), randn(r, H, 4 * H, scale=0.5), np.zeros(4 * H, np.float32)]
    check_training(lstm_loss, init, [xs, target], steps=3, lr=0.5, mode=mode)


# ---- 4. a language model with tied input and output embeddings (repeated token indices) -------------------
def tied_lm(lib):
    def loss(E, W, tokens, next_tokens):
        h = (E[tokens] @ W).tanh()  # (T, d)
        logits = h @ E.t()  # the same E scores the vocabulary
        logp = logits.log_softmax(dim=1)
        return -logp[lib.arange(len(next_tokens)), next_tokens].mean()

    return loss


@modes()
def test_tied_embeddings_language_model(mode):
    r = rng(84)
    tokens = np.array([1, 3, 1, 0, 3, 3], np.int64)  # repeated tokens: gradients accumulate into E's rows
    next_tokens = np.array([3, 1, 0, 3, 3, 2], np.int64)
    check_training(tied_lm, [randn(r, 5, 4), randn(r, 4, 4, scale=0.5)], [tokens, next_tokens],
                   steps=3, lr=0.5, mode=mode)


# ---- 5. Adam written by hand, state in dicts keyed by parameter name ----------------------------------------
def adam_loss(params, x, y):
    h = (x @ params["W1"] + params["b1"]).tanh()
    return ((h @ params["W2"] - y) ** 2).mean()


def train_adam(mode, steps=4, lr=0.05, b1=0.9, b2=0.999, eps=1e-8):
    lib = mode.lib
    r = rng(85)
    x, y = lib.tensor(randn(r, 8, 3)), lib.tensor(randn(r, 8, 1))
    init = {"W1": randn(r, 3, 4), "b1": np.zeros(4, np.float32), "W2": randn(r, 4, 1)}
    m = {k: lib.zeros(v.shape) for k, v in init.items()}
    v = {k: lib.zeros(val.shape) for k, val in init.items()}
    losses = []
    if mode.functional:
        params = tensors(lib, init)
        step_fn = mode.value_and_grad(adam_loss)
    else:
        params = tensors(lib, init, requires_grad=True)
        loss_fn = mode.compile(adam_loss)
    for t in range(1, steps + 1):
        if mode.functional:
            loss, grads = step_fn(params, x, y)
            same_structure(grads, params)
        else:
            loss = loss_fn(params, x, y)
            loss.backward()
            grads = {k: p.grad for k, p in params.items()}
        for k in params:
            g = grads[k]
            m[k].mul_(b1).add_((1 - b1) * g)
            v[k].mul_(b2).add_((1 - b2) * g * g)
            m_hat = m[k] / (1 - b1 ** t)
            v_hat = v[k] / (1 - b2 ** t)
            if mode.functional:
                params[k] = params[k] - lr * m_hat / (v_hat.sqrt() + eps)
            else:
                params[k].data -= lr * m_hat / (v_hat.sqrt() + eps)
                params[k].grad = None
        losses.append(loss.item())
    return losses, params


@modes()
def test_adam_by_hand(mode):
    want_losses, want_params = train_adam(TORCH)
    got_losses, got_params = train_adam(mode)
    assert_close(got_losses, want_losses, path="losses")
    assert_close(got_params, want_params, rtol=1e-4, atol=1e-5, path="params")


# ---- 6. validation under no_grad() between training steps, with the same (compiled) loss --------------------
def val_loss_program(params, x, y):
    W, b = params
    return ((x @ W + b - y) ** 2).mean()


def train_with_validation(mode, steps=4, lr=0.1):
    lib = mode.lib
    r = rng(86)
    xt, yt, xv, yv = (lib.tensor(a) for a in (randn(r, 8, 3), randn(r, 8, 1), randn(r, 4, 3), randn(r, 4, 1)))
    init = [randn(r, 3, 1), np.zeros(1, np.float32)]
    train_losses, val_losses = [], []
    if mode.functional:
        params = tensors(lib, init)
        step = mode.value_and_grad(val_loss_program)
    else:
        params = tensors(lib, init, requires_grad=True)
        loss_fn = mode.compile(val_loss_program)
    for _ in range(steps):
        if mode.functional:
            loss, grads = step(params, xt, yt)
            same_structure(grads, params)
            params = [p - lr * g for p, g in zip(params, grads)]
            val = val_loss_program(params, xv, yv)  # plain eager evaluation of the new parameters
        else:
            loss = loss_fn(params, xt, yt)
            loss.backward()
            with lib.no_grad():
                for p in params:
                    p -= lr * p.grad
                    p.grad.zero_()
                val = loss_fn(params, xv, yv)  # the compiled loss again, under no_grad
            assert not val.requires_grad
        train_losses.append(loss.item())
        val_losses.append(val.item())
    return train_losses, val_losses, params


@modes()
def test_validation_under_no_grad_between_steps(mode):
    want = train_with_validation(TORCH)
    got = train_with_validation(mode)
    assert_close(list(got), list(want), path="train losses, val losses, params")


# ---- 7. two losses sharing one forward: `loss1.backward(retain_graph=True); loss2.backward()` -------------
def shared_trunk(params, x, y, labels):
    W, Vr, Vc = params
    h = (x @ W).tanh()
    reg = ((h @ Vr - y) ** 2).mean()
    logp = (h @ Vc).log_softmax(dim=1)
    return reg, logp, h


def train_two_heads(mode, steps=3, lr=0.2):
    lib = mode.lib
    r = rng(87)
    x, y = lib.tensor(randn(r, 6, 3)), lib.tensor(randn(r, 6, 1))
    labels = lib.tensor(r.integers(0, 2, size=6).astype(np.int64))
    params = tensors(lib, [randn(r, 3, 4), randn(r, 4, 1), randn(r, 4, 2)], requires_grad=True)
    f = mode.compile(shared_trunk)
    history = []
    for _ in range(steps):
        reg, logp, h = f(params, x, y, labels)
        cls = -logp[lib.arange(6), labels].mean()
        reg.backward(retain_graph=True)
        cls.backward()
        with lib.no_grad():
            for p in params:
                p -= lr * p.grad
                p.grad = None
        history.append((reg.item(), cls.item()))
    return history, params


@modes(grad_numpy="a function with several outputs, each backpropagated in turn with retain_graph=True: "
                  "tg.grad takes a scalar-valued function (the single-loss programs cover it)",
       grad_jax="several outputs backpropagated in turn with retain_graph=True: tg.grad takes a scalar function")
def test_two_losses_sharing_a_forward(mode):
    want_history, want_params = train_two_heads(TORCH)
    got_history, got_params = train_two_heads(mode)
    assert_close([list(h) for h in got_history], [list(h) for h in want_history], path="losses")
    assert_close(got_params, want_params, path="params")


# ---- 8. a masked mean with `where` and a per-feature scale broadcast from a (1, d) row -------------------------
def masked_mean(lib):
    def loss(scale, x, valid):
        z = (x * scale).tanh()
        z = lib.where(valid, z, lib.zeros_like(z))
        return z.sum() / valid.sum()

    return loss


@modes()
def test_masked_mean_with_where(mode):
    r = rng(88)
    x = randn(r, 5, 3)
    valid = r.random((5, 3)) > 0.3
    check_function(masked_mean, [(randn(r, 1, 3), x, valid), (randn(r, 1, 3), x, ~valid)], argnums=0, mode=mode)
