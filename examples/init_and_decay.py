"""Initialization and weight decay: two details that decide whether and how a CNN trains.

Part 1 -- initialization. Push a batch of random images through 20 layers of (3x3 conv, ReLU) and
measure the standard deviation of the activations after each layer (forward) and of the loss
gradient with respect to them (backward), under three initializations of the conv weights:

  Normal(0, 0.01)  the AlexNet recipe. Each layer scales the std by about 0.01 * sqrt(fan_in / 2)
                   (fan_in = 9 * 32 = 288 here: a factor 0.12), so after 20 layers nothing is left,
                   forward or backward, and the first layers get no gradient to learn from;
  Xavier           Var(w) = 2 / (fan_in + fan_out) = 1 / fan_in: right for tanh, but ReLU zeroes
                   half of each layer's input, so the std halves every two layers (about 1/1000
                   after 20);
  Kaiming (He)     Var(w) = 2 / fan_in: the factor 2 makes up for ReLU; the std stays put.

(``examples/init_statistics.py`` shows the forward half of this with Linear layers.)

Part 2 -- weight decay with momentum. Train the same small U-Net on the same data three times with
SGD (momentum 0.9): without weight decay, with coupled L2 decay (the decay term wd * w added to
the gradient, so it also goes through the momentum buffer) and with decoupled decay (w shrunk by
lr * wd each step, outside the momentum; the lecture's update). With momentum mu, the coupled
term is averaged like a gradient and ends up about 1 / (1 - mu) = 10 times stronger for the same
wd, so the weight norm falls much faster. The decay is applied to conv weights only (not to
biases or BatchNorm parameters), as ``tinypix train`` does. Curves: training loss, weight norm
and held-out mIoU side by side.

Run:  python examples/init_and_decay.py           (full, a few minutes on 2 CPU cores)
      python examples/init_and_decay.py --quick   (reduced: checks that it runs)
"""
import numpy as np

import common
import tinypix
import tinypix.nn as nn
from tinypix import optim
from tinypix.data import DataLoader, SyntheticScenes
from tinypix.models import UNet
from tinypix.nn import init
from tinypix.training import compute_loss

FULL = dict(layers=20, channels=32, image=32, batch=16,
            size=32, train_scenes=200, test_scenes=100, steps=300, eval_every=50, base=8,
            lr=0.05, momentum=0.9, weight_decay=5e-3)
QUICK = dict(layers=20, channels=8, image=8, batch=4,
             size=32, train_scenes=8, test_scenes=8, steps=4, eval_every=2, base=4,
             lr=0.05, momentum=0.9, weight_decay=5e-3)
SHOWN = (1, 2, 5, 10, 15, 20)

RECIPES = {
    "Normal(0, 0.01)": lambda w: init.normal_(w, 0.0, 0.01),
    "Xavier normal": init.xavier_normal_,
    "Kaiming normal": lambda w: init.kaiming_normal_(w, nonlinearity="relu"),
}


# -- part 1: statistics through a deep ReLU stack --------------------------------------------------
def layer_statistics(initialize, cfg):
    """(activation stds, gradient stds) after each of cfg.layers (3x3 conv, ReLU) layers."""
    convs = [nn.Conv2d(cfg.channels, cfg.channels, 3, padding=1, bias=False) for _ in range(cfg.layers)]
    for conv in convs:
        initialize(conv.weight)
    h = tinypix.randn(cfg.batch, cfg.channels, cfg.image, cfg.image)
    activations = []
    for conv in convs:
        h = conv(h).relu()
        h.retain_grad()                     # keep dL/dh of this intermediate tensor after backward
        activations.append(h)
    # A loss whose gradient with respect to the last activation is standard normal noise, so the
    # backward signal starts at std 1, as the forward one did.
    g = tinypix.randn(*h.shape)
    (h * g).sum().backward()
    forward = [float(a.detach().numpy().std()) for a in activations]
    backward = [float(a.grad.numpy().std()) for a in activations]
    return forward, backward


def spread(stds):
    """Largest over smallest std across the layers: 1 means perfectly steady."""
    return max(stds) / min(stds) if min(stds) > 0 else float("inf")


def part1(cfg):
    plt = common.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    rows = []
    for name, initialize in RECIPES.items():
        tinypix.manual_seed(cfg.seed)
        forward, backward = layer_statistics(initialize, cfg)
        for statistic, stds in (("activation std", forward), ("gradient std", backward)):
            rows.append([name, statistic] + [stds[n - 1] for n in SHOWN] + [min(stds), max(stds), spread(stds)])
        layers = np.arange(1, cfg.layers + 1)
        a.semilogy(layers, forward, "o-", label=name)
        b.semilogy(layers, backward, "o-", label=name)
    common.print_table(["init", "statistic"] + [f"layer {n}" for n in SHOWN] + ["min (all layers)", "max", "max/min"],
                       rows,
                       title=f"{cfg.layers} layers of 3x3 conv ({cfg.channels} channels) + ReLU, input std 1, "
                             f"batch {cfg.batch}x{cfg.channels}x{cfg.image}x{cfg.image}")
    a.set_title("forward: std of activations")
    b.set_title("backward: std of dL/d(activation)")
    for ax in (a, b):
        ax.set_xlabel("layer")
        ax.legend()
    return common.save_figure(fig, cfg.out, "init_statistics.png")


# -- part 2: coupled L2 vs decoupled weight decay with momentum -------------------------------------
def conv_weight_norm(model):
    return float(np.sqrt(sum((p.detach().numpy() ** 2).sum() for p in model.parameters() if p.ndim == 4)))


def make_optimizer(model, cfg, rule):
    decay = [p for p in model.parameters() if p.ndim == 4]        # conv weights
    other = [p for p in model.parameters() if p.ndim != 4]        # biases, BatchNorm scale and shift
    wd = 0.0 if rule == "no decay" else cfg.weight_decay
    return optim.SGD([{"params": decay, "weight_decay": wd}, {"params": other, "weight_decay": 0.0}],
                     lr=cfg.lr, momentum=cfg.momentum, decoupled_weight_decay=(rule == "decoupled"))


def part2(cfg):
    train_set = SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=cfg.seed)
    test_loader = DataLoader(SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=cfg.seed + 1000), batch_size=50)
    histories, rows = {}, []
    for rule in ("no decay", "coupled L2", "decoupled"):
        tinypix.manual_seed(cfg.seed)                       # same initial weights ...
        model = UNet(3, 4, base_channels=cfg.base, depth=2)
        loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=True, seed=cfg.seed)  # ... same batches
        optimizer = make_optimizer(model, cfg, rule)
        history = {"step": [0], "norm": [conv_weight_norm(model)], "loss": [], "eval_step": [], "miou": []}
        with common.Stopwatch() as t:
            for start in range(0, cfg.steps, cfg.eval_every):
                losses = common.train(model, loader, lambda m, b: compute_loss("segmentation", m(b["image"]), b),
                                      cfg.eval_every, optimizer)
                history["loss"] += losses
                history["step"].append(start + cfg.eval_every)
                history["norm"].append(conv_weight_norm(model))
                history["eval_step"].append(start + cfg.eval_every)
                history["miou"].append(common.evaluate(model, test_loader, "segmentation")[1]["miou"])
        histories[rule] = history
        print(f"  {rule:10s} done in {t.seconds:.0f} s", flush=True)
        rows.append([rule, history["norm"][0], history["norm"][-1], np.mean(history["loss"][-cfg.eval_every:]),
                     history["miou"][-1], f"{t.seconds:.0f}"])
    common.print_table(["weight decay", "|w| start", "|w| end", "train loss (last)", "held-out mIoU", "train s"], rows,
                       title=f"SGD lr {cfg.lr}, momentum {cfg.momentum}, wd {cfg.weight_decay} on conv weights, "
                             f"{cfg.steps} steps, U-Net base {cfg.base}")

    plt = common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for rule, h in histories.items():
        smooth = np.convolve(h["loss"], np.ones(10) / 10, mode="valid") if len(h["loss"]) >= 10 else h["loss"]
        axes[0].plot(np.arange(len(smooth)) + 1, smooth, label=rule)
        axes[1].plot(h["step"], h["norm"], "o-", label=rule)
        axes[2].plot(h["eval_step"], h["miou"], "o-", label=rule)
    for ax, title in zip(axes, ["training loss (10-step mean)", "norm of all conv weights", "held-out mIoU"]):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend()
    return common.save_figure(fig, cfg.out, "weight_decay.png")


def main():
    cfg = common.setup("init_and_decay", __doc__, FULL, QUICK)
    part1(cfg)
    part2(cfg)


if __name__ == "__main__":
    main()
