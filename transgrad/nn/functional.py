"""`torch.nn.functional`: layers and losses as functions of tensors, built from the op
table's rows (convolution and pooling from `unfold`, whose gradient is `fold`)."""
from __future__ import annotations

import math

import numpy as np

from .._state import no_grad
from ..ops import OPS
from ..tensor import Tensor, apply, creation, tensor, where
from ..tensor.records import named, renamed


def _pair(v):
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else tuple(int(x) for x in v)


# ---- activations ----
def relu(x: Tensor, inplace: bool = False) -> Tensor:
    return x.relu_() if inplace else x.relu()


@named("LeakyReluBackward0")
def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return where(x > 0, x, x * negative_slope)


@named("EluBackward0")
def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    return where(x > 0, x, (x.clamp(max=0).exp() - 1) * alpha)


@named("SiluBackward0")
def silu(x: Tensor) -> Tensor:
    return x * x.sigmoid()


@named("SoftplusBackward0")
def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    bx = x * beta
    return where(bx > threshold, x, (bx.clamp(max=threshold).exp()).log1p() / beta)


@named("GeluBackward0")
def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    if approximate != "tanh":
        raise NotImplementedError("gelu: transgrad has the tanh approximation (approximate='tanh'); erf is not a row yet")
    return 0.5 * x * (1 + ((x + 0.044715 * x * x * x) * math.sqrt(2 / math.pi)).tanh())


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def softmax(x: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    return (x if dtype is None else x.astype(dtype)).softmax(-1 if dim is None else dim)


def log_softmax(x: Tensor, dim: int | None = None, dtype=None) -> Tensor:
    return (x if dtype is None else x.astype(dtype)).log_softmax(-1 if dim is None else dim)


# ---- layers ----
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    out = x @ weight.t()
    return out if bias is None else renamed(out + bias, "AddmmBackward0", -1) if x.ndim == 2 else out + bias


@named("Im2ColBackward0")
def unfold(x: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    if _pair(dilation) != (1, 1):
        raise NotImplementedError("unfold: dilation is not supported")
    return apply(OPS["unfold"], x, kernel=_pair(kernel_size), stride=_pair(stride), padding=_pair(padding), value=0.0)


def fold(x: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    if _pair(dilation) != (1, 1):
        raise NotImplementedError("fold: dilation is not supported")
    n, ckk = x.shape[0], x.shape[1]
    kh, kw = _pair(kernel_size)
    size = (n, ckk // (kh * kw)) + _pair(output_size)
    return apply(OPS["fold"], x, size=size, kernel=(kh, kw), stride=_pair(stride), padding=_pair(padding))


def _windows(x, kernel, stride, padding, value):
    """(N, C, H, W) -> (N, C, kh*kw, oh, ow): the windows of a 2-D sliding kernel."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    cols = apply(OPS["unfold"], x, kernel=kernel, stride=stride, padding=padding, value=value)
    return cols.reshape(n, c, kh * kw, oh, ow)


@named("ConvolutionBackward0")
def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """A 2-D convolution (cross-correlation, as PyTorch's) as a matmul over `unfold`'s patches."""
    if groups != 1 or _pair(dilation) != (1, 1):
        raise NotImplementedError("conv2d: groups and dilation are not supported")
    unbatched = x.ndim == 3
    x = x.unsqueeze(0) if unbatched else x
    n, c, h, w = x.shape
    out_c, in_c, kh, kw = weight.shape
    if padding in ("same", "valid"):  # PyTorch's strings: the output keeps the input's size, or no padding
        if padding == "same" and (_pair(stride) != (1, 1) or kh % 2 == 0 or kw % 2 == 0):
            raise NotImplementedError("conv2d: padding='same' needs stride 1 and an odd kernel here")
        padding = ((kh - 1) // 2, (kw - 1) // 2) if padding == "same" else 0
    if in_c != c:
        raise RuntimeError(f"conv2d: weight of shape {list(weight.shape)} expects {in_c} input channels, "
                           f"but the input of shape {list(x.shape)} has {c}")
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    cols = apply(OPS["unfold"], x, kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw), value=0.0)
    out = (weight.reshape(out_c, -1) @ cols).reshape(n, out_c, oh, ow)
    if bias is not None:
        out = out + bias.reshape(1, out_c, 1, 1)
    return out[0] if unbatched else out


@named("MaxPool2DWithIndicesBackward0")
def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    if x.ndim == 3:  # unbatched (C, H, W)
        return max_pool2d(x.unsqueeze(0), kernel_size, stride, padding)[0]
    kernel = _pair(kernel_size)
    windows = _windows(x, kernel, _pair(kernel if stride is None else stride), _pair(padding), -np.inf)
    return windows.max(2).values  # the gradient goes to the maximum's place, as PyTorch's


@named("AvgPool2DBackward0")
def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    if x.ndim == 3:  # unbatched (C, H, W)
        return avg_pool2d(x.unsqueeze(0), kernel_size, stride, padding)[0]
    kernel = _pair(kernel_size)
    return _windows(x, kernel, _pair(kernel if stride is None else stride), _pair(padding), 0.0).mean(2)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return x.flatten(start_dim, end_dim)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zeros with probability `p` and scales the rest by 1/(1-p) while training. Inside a
    compiled function the mask is drawn anew at every call."""
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    shape, dtype = x.shape, x.dtype
    mask = creation.drawn(lambda g: (g.random(shape) >= p).astype(dtype) / dtype.type(1 - p))
    return x.mul_(mask) if inplace else x * mask


@named("EmbeddingBackward0")
def embedding(idx: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    _in_range(idx if isinstance(idx, Tensor) else tensor(idx), weight.shape[0], "embedding: an index is")  # -1: the last row
    out = weight[idx]
    if padding_idx is not None and out.requires_grad:  # PyTorch's padding row reads as it is but takes no gradient
        pad = idx == _padding_row(padding_idx, weight.shape[0])  # (on the rows picked: no copy of the table)
        out = where(pad.unsqueeze(-1), out.detach(), out)
    return out


def _in_range(idx, n, what):
    """PyTorch's IndexError for an index outside [0, n) (a guard inside a compiled function)."""
    if idx.numel() and bool(((idx < 0) | (idx >= n)).any()):
        raise IndexError(f"{what} out of range: indices must be in 0 ... {n - 1}")


def _padding_row(padding_idx: int, n: int) -> int:
    if not -n <= padding_idx < n:
        raise AssertionError("Padding_idx must be within num_embeddings")  # PyTorch's error
    return padding_idx % n


@named("NativeLayerNormBackward0")
def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    dims = tuple(range(x.ndim - len(_shape(normalized_shape)), x.ndim))
    mean = x.mean(dims, keepdim=True)
    d = x - mean
    out = d / ((d * d).mean(dims, keepdim=True) + eps).sqrt()
    out = out if weight is None else out * weight
    return out if bias is None else out + bias


@named("NativeBatchNormBackward0")
def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise over the batch (and length) dimensions; while training, with the batch's
    statistics, updating the running ones in place (the variance unbiased, as PyTorch's)."""
    dims = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        mean = x.mean(dims, keepdim=True)
        d = x - mean
        var = (d * d).mean(dims, keepdim=True)
        if running_mean is not None:
            n = x.numel() // x.shape[1]
            with no_grad():
                running_mean.mul_(1 - momentum).add_(mean.reshape(-1).detach() * momentum)
                running_var.mul_(1 - momentum).add_(var.reshape(-1).detach() * (momentum * n / max(n - 1, 1)))
    else:
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
        d = x - mean
    out = d / (var + eps).sqrt()
    out = out if weight is None else out * weight.reshape(shape)
    return out if bias is None else out + bias.reshape(shape)


def _shape(s):
    return (int(s),) if isinstance(s, (int, np.integer)) else tuple(s)


def one_hot(idx: Tensor, num_classes: int = -1) -> Tensor:
    n = int(idx.max().item()) + 1 if num_classes < 0 else num_classes
    return (idx.unsqueeze(-1) == creation.arange(n)).long()


# ---- losses ----
def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


@named("MseLossBackward0")
def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    return _reduce((input - target).abs(), reduction)


def _per_class(weight: Tensor | None, input: Tensor):
    """A class weight that broadcasts along the class dim of `input` (1, or 0 unbatched)."""
    return 1 if weight is None else weight.reshape((-1,) + (1,) * (input.ndim - min(input.ndim, 2)))


def _nll(input: Tensor, target, weight: Tensor | None, ignore_index: int, reduction: str,
         smoothing: float = 0.0) -> Tensor:
    """-input[n, target[n], d...] on class dim 1 (0 unbatched), weighted per class, 0 where ignored; a mean
    divides by the kept rows' weight. PyTorch's label smoothing adds the weighted sum over classes of -input
    on the kept rows, times smoothing / C (its mean shares that divisor)."""
    target = target if isinstance(target, Tensor) else tensor(target)
    dim = 0 if input.ndim == 1 else 1
    keep = target != ignore_index
    safe = target.where(keep, 0)
    _in_range(safe, input.shape[dim], "nll_loss: a target class is")  # -1 would read the last class
    w = keep.astype(input.dtype) if weight is None else weight[safe] * keep.astype(input.dtype)
    loss = -input.gather(dim, safe.unsqueeze(dim)).squeeze(dim) * w
    if smoothing:
        loss = loss * (1 - smoothing) - (input * _per_class(weight, input)).sum(dim).where(keep, 0) * (
            smoothing / input.shape[dim])
    if reduction != "mean":
        return _reduce(loss, reduction)
    total = w.sum()  # 0 when every row is ignored: the loss is NaN, as PyTorch's, its gradient 0
    return (loss.sum() / total.where(total != 0, 1)).where(total != 0, float("nan"))


@named("NllLossBackward0")
def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """-input[n, target[n]] (log-probabilities in, class indices out), weighted per class."""
    return _nll(input, target, weight, ignore_index, reduction)


@named("NllLossBackward0")
def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits against class indices (or class probabilities)."""
    dim = 0 if input.ndim == 1 else 1
    logp = input.log_softmax(dim)
    if not (isinstance(target, Tensor) and target.dtype.kind == "f"):
        return _nll(logp, target, weight, ignore_index, reduction, label_smoothing)
    # class probabilities, as PyTorch's: smoothed towards uniform, weighted per class, a mean over rows alone
    n = input.shape[dim]
    target = target * (1 - label_smoothing) + label_smoothing / n if label_smoothing else target
    loss = -(logp * target * _per_class(weight, input))
    return loss.sum() / (input.numel() // n) if reduction == "mean" else _reduce(loss.sum(dim), reduction)


_BCE_EPS = float(np.float32(1e-12))  # PyTorch's kernels hold their 1e-12 as a float32, in float64 too


@named("BinaryCrossEntropyBackward0")
def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    # PyTorch clamps each log at -100 for the value, but its gradient is (p - t) / max(p (1 - p), 1e-12), not
    # the clamped logs' (0/0 at a saturated p): the value is taken at a detached p, the gradient from
    # (p - p0) (c + c0) / 2, which is 0 at p = p0 with first and second derivatives c and c' there.
    p0 = input.detach()
    d = input * (1 - input)
    big = d >= _BCE_EPS  # a clamp's quotient rule would square eps (1e-24) twice at second order: 0 in float32
    c = ((input - target) / d.where(big, 1)).where(big, (input - target) / _BCE_EPS)
    loss = ((target - 1) * (-p0).log1p().clamp(min=-100) - target * p0.log().clamp(min=-100)
            + (input - p0) * (c + c.detach()) / 2)
    return _reduce(loss if weight is None else loss * weight, reduction)


@named("BinaryCrossEntropyWithLogitsBackward0")
def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    # max(x, 0) - x t + log(1 + exp(-|x|)): stable for large |x|
    return _reduce(input.clamp(min=0) - input * target + (-input.abs()).exp().log1p(), reduction)
