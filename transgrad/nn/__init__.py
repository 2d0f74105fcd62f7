"""`torch.nn`: Module, Parameter, layers, losses, `functional` and `init` (PyTorch's names,
arguments, defaults and initialisations).

    module.py      Module, Parameter, Sequential, ModuleList, ModuleDict
    layers.py      Linear, Conv2d, pooling, activations, Dropout, Embedding, norms, losses
    functional.py  the same as functions (convolution and pooling from the `unfold` row)
    init.py        in-place initialisations
    utils.py       gradient clipping
"""
from . import functional, init, utils
from .layers import (
    AvgPool2d, BatchNorm1d, BatchNorm2d, BCELoss, BCEWithLogitsLoss, Conv2d, CrossEntropyLoss, Dropout, Embedding,
    Flatten, Identity, L1Loss, LayerNorm, LeakyReLU, Linear, LogSoftmax, MaxPool2d, MSELoss, NLLLoss, ReLU, Sigmoid,
    SiLU, Softmax, Tanh,
)
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential

__all__ = [
    "functional", "init", "utils", "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "Identity", "Linear",
    "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "ReLU", "Tanh", "Sigmoid", "SiLU", "LeakyReLU", "Softmax",
    "LogSoftmax", "Dropout", "Embedding", "LayerNorm", "BatchNorm1d", "BatchNorm2d", "MSELoss", "L1Loss", "NLLLoss",
    "CrossEntropyLoss", "BCELoss", "BCEWithLogitsLoss",
]
