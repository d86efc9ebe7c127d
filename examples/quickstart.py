"""A two-layer network from bare tensors, trained by hand-written gradient steps.

The label (same-sign quadrant, an XOR of the signs) is a rule no straight line can draw: a linear
classifier stays near chance, 0.5. The hidden ReLU layer is what lets the network learn it.

Run:  python examples/quickstart.py
"""
import tinypix

tinypix.manual_seed(0)
x = tinypix.randn(256, 2)                                   # points in the plane
y = ((x[:, 0] * x[:, 1]) > 0).float().reshape(256, 1)      # label: same-sign quadrant
w1 = (tinypix.randn(2, 32) * 0.7).requires_grad_()
b1 = tinypix.zeros(32, requires_grad=True)
w2 = (tinypix.randn(32, 1) * 0.25).requires_grad_()
b2 = tinypix.zeros(1, requires_grad=True)

for step in range(301):
    logits = (x @ w1 + b1).relu() @ w2 + b2
    p = logits.sigmoid()
    loss = -(y * (p + 1e-6).log() + (1 - y) * (1 - p + 1e-6).log()).mean()
    loss.backward()
    with tinypix.no_grad():                                 # the SGD step, by hand
        for param in (w1, b1, w2, b2):
            param.data -= 0.5 * param.grad.data
            param.grad = None
    accuracy = ((p > 0.5).float() == y).float().mean().item()
    if step % 100 == 0:
        print(f"step {step:3d}  loss {loss.item():.3f}  accuracy {accuracy:.2f}")

majority = max(y.mean().item(), 1 - y.mean().item())      # always guessing the larger class
shown = "shown" if accuracy > majority + 0.3 else "NOT shown"
print(f"lesson: a hidden ReLU layer learns a rule no straight line can draw — {shown} "
      f"(training accuracy {accuracy:.2f}; always guessing the larger class: {majority:.2f})")
