"""`max(dim)` / `min(dim)` with ties (PyTorch sends the whole gradient to the index it returns),
`lib.max(a, b)` / `lib.min(a, b)` with a tensor second argument (elementwise), and the
max-subtracted log-sum-exp users write by hand."""
import numpy as np
import torch

import transgrad as tg
from harness import check_function, modes, randn, rng, to_np


# ---- 1. max-pooling over time with positional gates: ties between positions at initialisation ----------
def max_pool_classifier(lib):
    def loss(gates, V, emb, tokens, label):
        feats = emb[tokens] * gates[:, None]  # (T, d): gated token embeddings
        pooled, where = feats.max(dim=0)  # ties: repeated tokens give equal rows
        logits = pooled @ V
        return -logits.log_softmax(dim=0)[label]

    return loss


@modes()
def test_max_pool_over_time_with_repeated_tokens(mode):
    r = rng(71)
    emb, V = randn(r, 5, 4), randn(r, 4, 3)
    tokens = np.array([2, 0, 2, 4, 0, 1], np.int64)  # tokens 2 and 0 repeat: exact ties in the max
    gates = np.ones(6, np.float32)  # gates start at one: the tied rows are equal
    label = 1
    check_function(max_pool_classifier, [(gates, V, emb, tokens, label)], argnums=(0, 1, 2), mode=mode)


def test_max_dim_tie_gradient_goes_to_the_returned_index():
    # the rule itself, eager, against PyTorch (which also returns the first index here)
    x0 = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]], np.float32)
    for name in ("max", "min"):
        out = {}
        for lib in (torch, tg):
            x = lib.tensor(x0, requires_grad=True)
            vals, idx = getattr(x, name)(dim=1)
            (vals * lib.tensor([1.0, 10.0])).sum().backward()
            out[lib.__name__] = (to_np(idx), to_np(x.grad))
        np.testing.assert_array_equal(out["transgrad"][0], out["torch"][0], err_msg=f"{name} indices")
        np.testing.assert_allclose(out["transgrad"][1], out["torch"][1], err_msg=f"{name} gradient")


# ---- 2. a triplet loss with the hardest negative: `min(dim=1)` over duplicated negatives ------------------
def hardest_negative_triplet(lib):
    def loss(anchors, positives, negatives):
        pos = ((anchors - positives) ** 2).sum(dim=1)
        dist = ((anchors[:, None, :] - negatives[None, :, :]) ** 2).sum(dim=2)
        hardest = dist.min(dim=1).values
        return (pos - hardest + 1.0).clamp(min=0).mean()

    return loss


@modes()
def test_triplet_loss_hardest_negative_with_duplicates(mode):
    r = rng(72)
    anchors, positives = randn(r, 3, 2), randn(r, 3, 2, scale=0.3)
    negatives = randn(r, 4, 2)
    negatives = np.concatenate([negatives, negatives[:2]])  # two negatives sampled twice
    check_function(hardest_negative_triplet, [(anchors, positives, negatives)], argnums=(0, 1, 2), mode=mode)


# ---- 3. PPO's clipped objective: `lib.min(surr1, surr2)`, with ties inside the clip range -------------------
def ppo_loss(lib):
    def loss(logp_new, logp_old, adv):
        ratio = (logp_new - logp_old).exp()
        surr1 = ratio * adv
        surr2 = ratio.clamp(0.8, 1.2) * adv
        return -lib.min(surr1, surr2).mean()

    return loss


@modes()
def test_ppo_clipped_objective(mode):
    logp_old = np.log(np.array([0.2, 0.5, 0.3, 0.6, 0.1, 0.4], np.float32))
    logp_new = logp_old + np.array([0.05, -0.5, 0.4, 0.0, -0.1, 0.3], np.float32)
    adv = np.array([1.0, -0.5, 2.0, 0.3, -1.0, -2.0], np.float32)
    check_function(ppo_loss, [(logp_new, logp_old, adv)], argnums=0, mode=mode)


# ---- 4. a hinge loss with `lib.max(margin - y * s, zeros)` and a running elementwise max --------------------
def hinge_svm(lib):
    def loss(w, b, x, y):
        s = x @ w + b
        hinge = lib.max(1 - y * s, lib.zeros_like(s))
        peak = lib.max(s, -s)  # |s| by an elementwise max
        return hinge.mean() + 0.01 * (w ** 2).sum() + 0.001 * peak.sum()

    return loss


@modes()
def test_hinge_loss_with_elementwise_max(mode):
    r = rng(74)
    x = randn(r, 8, 2)
    y = np.sign(x[:, 0] + 0.3 * x[:, 1] + 0.1).astype(np.float32)
    check_function(hinge_svm, [(randn(r, 2), np.array(0.1, np.float32), x, y)], argnums=(0, 1), mode=mode)


# ---- 5. log-sum-exp stabilised by hand with `x.max(dim=1, keepdim=True)[0]` -------------------------------
def stable_logsumexp_nll(lib):
    def loss(W, x, labels):
        z = x @ W
        m = z.max(dim=1, keepdim=True)[0]
        lse = m + (z - m).exp().sum(dim=1, keepdim=True).log()
        logp = z - lse
        return -logp[lib.arange(len(labels)), labels].mean()

    return loss


@modes()
def test_hand_written_logsumexp(mode):
    r = rng(75)
    x, W = randn(r, 5, 3), randn(r, 3, 4)
    labels = r.integers(0, 4, size=5).astype(np.int64)
    check_function(stable_logsumexp_nll, [(W, x, labels), (np.zeros_like(W), x, labels)], argnums=0, mode=mode)
