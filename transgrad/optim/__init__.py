"""`torch.optim`: SGD (momentum, Nesterov, weight decay), Adam, AdamW, RMSprop."""
from .optimizers import SGD, Adam, AdamW, Optimizer, RMSprop

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop"]
