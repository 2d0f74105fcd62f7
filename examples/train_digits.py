"""Train a small classifier on scikit-learn's digits (8x8 images, 10 classes) the way a
PyTorch user writes it, with `tg.nn` and `tg.optim`, and the whole training step compiled:
`zero_grad()`, the forward, `loss.backward()` run as one generated function that writes the
gradients into the parameters' `.grad`. Prints the loss curve, the test accuracy and the
code of one step (its backward is the part under `# grad of:`).

    python examples/train_digits.py                  # NumPy backend
    python examples/train_digits.py --backend jax    # one XLA program per step
"""
import argparse

import numpy as np
from sklearn.datasets import load_digits

import transgrad as tg
import transgrad.nn as nn
import transgrad.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def main(epochs=10, batch=100, backend="numpy", seed=0):
    digits = load_digits()
    x = tg.tensor((digits.data / 16.0).astype(np.float32))
    y = tg.tensor(digits.target)
    x_train, y_train, x_test, y_test = x[:1500], y[:1500], x[1500:], y[1500:]

    tg.manual_seed(seed)
    model = Net()
    optimizer = tg.optim.Adam(model.parameters(), lr=1e-2)

    @tg.compile(backend=backend)
    def train_step(xb, yb):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        return loss

    curve = []
    for epoch in range(epochs):
        order = tg.randperm(len(x_train))
        total = 0.0
        for i in range(0, len(x_train), batch):
            idx = order[i:i + batch]
            total += train_step(x_train[idx], y_train[idx]).item()
            optimizer.step()
        curve.append(total / (len(x_train) // batch))
        print(f"epoch {epoch + 1:2d}  loss {curve[-1]:.4f}")

    print(f"traces: {train_step.cache_info()}")
    print("\nThe generated code of one training step:\n")
    print(train_step.code(x_train[:batch], y_train[:batch]))

    model.eval()
    with tg.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    print(f"\ntest accuracy {accuracy:.3f} on {len(x_test)} digits")
    return curve, accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--backend", default="numpy", choices=["numpy", "jax"])
    args = parser.parse_args()
    main(epochs=args.epochs, backend=args.backend)
