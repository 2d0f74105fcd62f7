"""The classic PyTorch Autograd tutorial, step by step, run with transgrad.

Every `backward()` below runs a generated, straight-line Python function; the script
prints that code for both parts of the tutorial.
"""
import transgrad as tg
from transgrad.autograd import Variable

# 1. a leaf variable
x = Variable(tg.ones(2, 2), requires_grad=True)
print(x)

# 2. an operation: y has a grad_fn, x (created by the user) has none
y = x + 2
print(y)
print(y.grad_fn)
print(x.grad_fn)

# 3. more operations
z = y * y * 3
out = z.mean()
print(z, out)

# 4. backward: d(out)/dx = 3/2 (x + 2) = 4.5
print(tg.backward_code(out))
out.backward()
print(x.grad)

# 5. data-dependent control flow: the number of doublings depends on x
x = tg.randn(3)
x = Variable(x, requires_grad=True)

y = x * 2
k = 0
while y.data.norm() < 1000:
    y = y * 2
    k += 1
print(y)

# 6. a vector-Jacobian product: x.grad = v * 2**(k+1)
gradients = tg.FloatTensor([0.1, 1.0, 0.0001])
print(tg.backward_code(y, gradients))
y.backward(gradients)
print(f"k = {k} loop iterations, so x.grad = v * 2**{k + 1}:")
print(x.grad)
