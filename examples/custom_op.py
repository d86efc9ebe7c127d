"""Write your own differentiable op and check its gradient -- the whole recipe.

A tinypix op is a subclass of tinypix.autograd.Function with two static methods side by side:
forward computes the output from raw arrays; backward turns the gradient of the loss with
respect to the output (dy) into gradients with respect to each input. gradcheck then compares
your backward with central finite differences in float64.

Run:  python examples/custom_op.py
"""
import numpy as np

import tinypix
from tinypix.autograd import Function
from tinypix.testing import GradcheckError, gradcheck


class Softplus(Function):
    """y = log(1 + e^x), computed stably; dy/dx = sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):                         # x: any shape, float
        ctx.save_for_backward(x)
        return np.logaddexp(0, x)               # log(e^0 + e^x) without overflow

    @staticmethod
    def backward(ctx, dy):                       # dy: same shape as y
        x, = ctx.saved_tensors
        return dy / (1 + np.exp(-x))            # chain rule: dL/dx = dL/dy * sigmoid(x)


class BuggySoftplus(Softplus):
    @staticmethod
    def backward(ctx, dy):
        x, = ctx.saved_tensors
        return dy / (1 + np.exp(x))             # a sign slip: this is sigmoid(-x)


def main():
    x = tinypix.randn(3, 4, dtype=tinypix.float64, requires_grad=True)
    y = Softplus.apply(x)
    y.sum().backward()
    print("softplus(x) =\n", y)
    print("x.grad (should be sigmoid(x)) =\n", x.grad)
    passed = gradcheck(Softplus.apply, (x,))
    print("gradcheck(Softplus):", passed)
    try:
        gradcheck(BuggySoftplus.apply, (x,))
        caught = False
    except GradcheckError as e:
        print("gradcheck(BuggySoftplus) caught the bug:\n", e)
        caught = True
    print(f"lesson: finite differences check a hand-written backward: the right one passes, a sign slip is "
          f"caught — {'shown' if passed and caught else 'NOT shown'} (Softplus passes: {passed}; "
          f"the buggy one caught: {caught})")

if __name__ == "__main__":
    main()
