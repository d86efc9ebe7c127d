"""How weight initialization decides whether a deep ReLU network can learn at all.

Push one batch of random inputs through 20 Linear + ReLU layers and print the standard deviation
of the activations after some of them, for three initializations:

  Normal(0, 0.01)  the AlexNet recipe: each layer multiplies the std by about
                   0.01 * sqrt(fan_in / 2) = 0.11 here, so the signal vanishes;
  Xavier           Var(w) = 2 / (fan_in + fan_out) = 1 / fan_in: right for tanh, but ReLU zeroes
                   half of each layer's input, so the std still halves every two layers;
  Kaiming          Var(w) = 2 / fan_in: the factor 2 makes up for ReLU, the std stays put.

(``examples/init_and_decay.py`` does the same with conv layers, backward as well as forward.)

Run:  python examples/init_statistics.py           (seconds)
      python examples/init_statistics.py --quick   (narrower layers, a smaller batch)
"""
import common
import tinypix
import tinypix.nn as nn
from tinypix.nn import init

FULL = dict(depth=20, width=256, batch=512)
QUICK = dict(depth=20, width=64, batch=64)
SHOWN = (1, 2, 5, 10, 15, 20)

RECIPES = {
    "Normal(0, 0.01)": lambda w: init.normal_(w, 0.0, 0.01),
    "Xavier normal": init.xavier_normal_,
    "Kaiming normal": lambda w: init.kaiming_normal_(w, nonlinearity="relu"),
}


def activation_stds(initialize, cfg):
    """Std of the activations after each layer of a fresh cfg.depth-layer ReLU stack."""
    layers = [nn.Linear(cfg.width, cfg.width) for _ in range(cfg.depth)]
    for layer in layers:
        initialize(layer.weight)
    h = tinypix.randn(cfg.batch, cfg.width)
    stds = []
    with tinypix.no_grad():
        for layer in layers:
            h = layer(h).relu()
            stds.append(float(h.numpy().std()))
    return stds


def main():
    cfg = common.setup("init_statistics", __doc__, FULL, QUICK)
    last = {name: [] for name in RECIPES}
    rows = []
    for seed in cfg.seeds:
        for name, initialize in RECIPES.items():
            tinypix.manual_seed(seed)
            stds = activation_stds(initialize, cfg)
            last[name].append(stds[-1])
            if seed == cfg.seeds[0]:
                rows.append([name] + [stds[n - 1] for n in SHOWN])
    common.print_table(["init"] + [f"layer {n}" for n in SHOWN], rows,
                       title=f"std of activations after each of {cfg.depth} Linear({cfg.width}, {cfg.width}) + ReLU "
                             f"layers (input std 1, batch {cfg.batch}, seed {cfg.seeds[0]})")
    common.lesson(f"Kaiming init keeps the activation std through {cfg.depth} ReLU layers, Normal(0, 0.01) lets it "
                  f"vanish (std after layer {cfg.depth}, input std 1)",
                  last["Kaiming normal"], last["Normal(0, 0.01)"], names=("Kaiming", "Normal(0, 0.01)"), margin=0.1)


if __name__ == "__main__":
    main()
