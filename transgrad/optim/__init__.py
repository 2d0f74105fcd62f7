"""`torch.optim`: SGD (momentum, Nesterov, weight decay), Adam, AdamW, RMSprop, and the
learning-rate schedulers of `lr_scheduler`."""
from . import lr_scheduler
from .optimizers import SGD, Adam, AdamW, Optimizer, RMSprop

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]
