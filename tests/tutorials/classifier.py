import torch
import torch.nn as nn
import torch.nn.functional as F

# three Gaussian blobs in the plane, one per class
torch.manual_seed(0)
centers = torch.tensor([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])
labels = torch.randint(0, 3, (300,))
points = centers[labels] + 0.7 * torch.randn(300, 2)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


net = Net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
for epoch in range(30):
    perm = torch.randperm(300)
    total = 0.0
    for i in range(0, 300, 50):
        idx = perm[i:i + 50]
        optimizer.zero_grad()
        loss = F.cross_entropy(net(points[idx]), labels[idx])
        loss.backward()
        optimizer.step()
        total += loss.item()
    if epoch % 5 == 4:
        print(epoch, total / 6)

with torch.no_grad():
    predicted = net(points).argmax(dim=1)
accuracy = (predicted == labels).float().mean().item()
print(f"accuracy {accuracy:.3f}")
print(net.fc2.bias)
