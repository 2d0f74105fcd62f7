"""`torch.autograd.graph`: the classes of autograd's recorded graph."""
from ..tensor.records import AccumulateGrad, Node, RemovableHandle

__all__ = ["Node", "AccumulateGrad", "RemovableHandle"]
