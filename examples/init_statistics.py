"""How weight initialization decides whether a deep ReLU network can learn at all.

Push one batch of random inputs through 20 Linear + ReLU layers and print the standard deviation
of the activations after some of them, for three initializations:

  Normal(0, 0.01)  the AlexNet recipe: each layer multiplies the std by about
                   0.01 * sqrt(fan_in / 2) = 0.11 here, so the signal vanishes;
  Xavier           Var(w) = 2 / (fan_in + fan_out) = 1 / fan_in: right for tanh, but ReLU zeroes
                   half of each layer's input, so the std still halves every two layers;
  Kaiming          Var(w) = 2 / fan_in: the factor 2 makes up for ReLU, the std stays put.

    python examples/init_statistics.py
"""
import tinypix
import tinypix.nn as nn
from tinypix.nn import init

DEPTH, WIDTH, BATCH = 20, 256, 512
SHOWN = (1, 2, 5, 10, 15, 20)

RECIPES = {
    "Normal(0, 0.01)": lambda w: init.normal_(w, 0.0, 0.01),
    "Xavier normal": init.xavier_normal_,
    "Kaiming normal": lambda w: init.kaiming_normal_(w, nonlinearity="relu"),
}


def activation_stds(initialize):
    """Std of the activations after each layer of a fresh DEPTH-layer ReLU stack."""
    layers = [nn.Linear(WIDTH, WIDTH) for _ in range(DEPTH)]
    for layer in layers:
        initialize(layer.weight)
    h = tinypix.randn(BATCH, WIDTH)
    stds = []
    with tinypix.no_grad():
        for layer in layers:
            h = layer(h).relu()
            stds.append(float(h.numpy().std()))
    return stds


def main():
    tinypix.manual_seed(0)
    print(f"std of activations after each of {DEPTH} Linear({WIDTH}, {WIDTH}) + ReLU layers "
          f"(input std 1, batch {BATCH})\n")
    print(f"{'layer':>16}" + "".join(f"{n:>11}" for n in SHOWN))
    for name, initialize in RECIPES.items():
        stds = activation_stds(initialize)
        print(f"{name:>16}" + "".join(f"{stds[n - 1]:>11.3g}" for n in SHOWN))


if __name__ == "__main__":
    main()
