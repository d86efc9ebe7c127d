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

Part 2 -- L2 inside Adam is not weight decay (Loshchilov and Hutter, "Decoupled weight decay
regularization"). tinypix's two rules (``tinypix/optim/adam.py``, the same as PyTorch's), with
g = dL/dw and ``lr`` the learning rate of the step -- the base rate alpha times the schedule's
multiplier eta_t (here a cosine from 1 to 0):

  Adam + L2 (coupled)   g <- g + wd * w, then the Adam step lr * m / (sqrt(v) + eps) (m, v: the
                        bias-corrected running means of g and g^2): the decay term is averaged into
                        m and divided by sqrt(v) like a gradient, so a weight whose gradients have
                        been large is barely decayed, one whose gradients are small is pulled to 0
                        at up to the full step size lr;
  AdamW (decoupled)     w <- w - lr * wd * w, then the Adam step of the loss gradient alone: every
                        weight loses the same fraction lr * wd per step.

The paper writes the decoupled step as w <- w - eta_t * lambda * w: lambda is multiplied by the
schedule multiplier eta_t but not by alpha. tinypix multiplies wd by the whole lr = alpha * eta_t,
so the paper's lambda is alpha * wd (tinypix's wd = lambda / alpha); the script reads its AdamW runs
both ways.

Two experiments on a small conv net WITHOUT BatchNorm (behind BatchNorm a weight's scale does not
change the function, and decay then only changes the effective learning rate), trained to label
16 scenes of 16 x 16 pixels, so it overfits and decay has something to regularise:

  grid       held-out cross-entropy over (lr, wd) for both rules, the same initial weights and
             batches in every run. Where is the best wd at each lr? The claim of the paper's
             Figure 2: it moves with lr for L2 and stays put for decoupled decay (the lesson
             lines say whether this net bears it out, read both ways). The best wd is the vertex
             of a parabola through the lowest point of each row and its two neighbours (in
             log wd); "moves" is the slope of log(best wd) against log(lr);
  shrinkage  from one state in mid-training, the same 20 steps (same batches) with and without the
             decay term; per weight, the fraction of w the decay removed per step, against the
             weight's gradient RMS (sqrt of Adam's second moment).

The decay acts on conv weights only (not biases), as ``tinypix train`` does.

Run:  python examples/init_and_decay.py           (full: 3 seeds, about 2 minutes on 2 CPU cores)
      python examples/init_and_decay.py --quick   (reduced: checks that it runs)
"""
import copy

import numpy as np

import common
import tinypix
import tinypix.nn as nn
import tinypix.nn.functional as F
from tinypix import optim
from tinypix.data import SyntheticScenes
from tinypix.nn import init
from tinypix.optim.lr_scheduler import CosineAnnealingLR

FULL = dict(layers=20, channels=32, image=32, batch=16,
            size=16, train_scenes=16, test_scenes=200, width=16, decay_batch=8, steps=300,
            lrs=(2e-3, 5e-3, 1.25e-2), l2_wds=(3e-3, 1e-2, 3e-2, 1e-1, 3e-1), adamw_wds=(0.3, 1.0, 3.0, 10.0, 30.0),
            warmup=150, branch=20)
QUICK = dict(layers=20, channels=8, image=8, batch=4,
             size=16, train_scenes=4, test_scenes=4, width=4, decay_batch=2, steps=3,
             lrs=(2e-3, 1.25e-2), l2_wds=(1e-2, 3e-2, 1e-1), adamw_wds=(1.0, 3.0, 10.0),
             warmup=3, branch=2)
SHOWN = (1, 2, 5, 10, 15, 20)
RULES = ("Adam + L2", "AdamW")
PAPER = "AdamW, paper's lambda"          # AdamW's runs, with the decay read as lambda = lr * wd

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
    rows, last = [], {name: [] for name in RECIPES}
    for seed in cfg.seeds:
        for name, initialize in RECIPES.items():
            tinypix.manual_seed(seed)
            forward, backward = layer_statistics(initialize, cfg)
            last[name].append(forward[-1])
            if seed != cfg.seeds[0]:
                continue
            for statistic, stds in (("activation std", forward), ("gradient std", backward)):
                rows.append([name, statistic] + [stds[n - 1] for n in SHOWN] + [min(stds), max(stds), spread(stds)])
            layers = np.arange(1, cfg.layers + 1)
            a.semilogy(layers, forward, "o-", label=name)
            b.semilogy(layers, backward, "o-", label=name)
    common.print_table(["init", "statistic"] + [f"layer {n}" for n in SHOWN] + ["min (all layers)", "max", "max/min"],
                       rows,
                       title=f"{cfg.layers} layers of 3x3 conv ({cfg.channels} channels) + ReLU, input std 1, "
                             f"batch {cfg.batch}x{cfg.channels}x{cfg.image}x{cfg.image}, seed {cfg.seeds[0]}")
    a.set_title("forward: std of activations")
    b.set_title("backward: std of dL/d(activation)")
    for ax in (a, b):
        ax.set_xlabel("layer")
        ax.legend()
    common.save_figure(fig, cfg.out, "init_statistics.png")
    return [dict(claim=f"Kaiming init keeps the activation std through {cfg.layers} ReLU conv layers, Normal(0, 0.01) "
                       f"lets it vanish (std after layer {cfg.layers}, input std 1)",
                 better=last["Kaiming normal"], worse=last["Normal(0, 0.01)"], names=("Kaiming", "Normal(0, 0.01)"),
                 margin=0.1)]


# -- part 2: L2 inside Adam against decoupled weight decay -----------------------------------------
def plain_net(width):
    """Conv + ReLU layers, no BatchNorm; dilations 1, 2, 4 see 15 x 15 pixels. (N, 3, H, W) -> (N, 4, H, W)."""
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
                         nn.Conv2d(width, width, 3, padding=4, dilation=4), nn.ReLU(),
                         nn.Conv2d(width, 4, 1))


def scenes(n, size, seed):
    """(images, masks) of n SyntheticScenes as Tensors (n, 3, S, S) and (n, S, S)."""
    data = SyntheticScenes(n, size=size, seed=seed)
    return (tinypix.tensor(np.stack([data[i]["image"] for i in range(n)])),
            tinypix.tensor(np.stack([data[i]["mask"] for i in range(n)])))


def make_optimizer(model, rule, lr, wd):
    """Adam with coupled L2 ('Adam + L2') or AdamW's decoupled decay, on conv weights only."""
    weights = [p for p in model.parameters() if p.ndim > 1]
    biases = [p for p in model.parameters() if p.ndim <= 1]
    return optim.Adam([{"params": weights, "weight_decay": wd}, {"params": biases, "weight_decay": 0.0}], lr=lr,
                      decoupled_weight_decay=(rule == "AdamW"))


def train_steps(model, optimizer, data, steps, batch, rng, scheduler=None):
    """``steps`` Adam steps on minibatches drawn by ``rng`` from the training scenes ``data``."""
    images, masks = data
    for _ in range(steps):
        pick = rng.choice(len(images), batch, replace=False)
        loss = F.cross_entropy(model(images[pick]), masks[pick], ignore_index=255)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def held_out_loss(cfg, seed, rule, lr, wd, train, test):
    """Held-out cross-entropy after cfg.steps steps (cosine schedule) from the weights of ``seed``."""
    tinypix.manual_seed(seed)
    model = plain_net(cfg.width)
    optimizer = make_optimizer(model, rule, lr, wd)
    train_steps(model, optimizer, train, cfg.steps, cfg.decay_batch, np.random.default_rng(seed),
                CosineAnnealingLR(optimizer, cfg.steps))
    with tinypix.no_grad():
        return F.cross_entropy(model(test[0]), test[1], ignore_index=255).item()


def best_wd(wds, losses):
    """The wd of least loss: vertex of the parabola in log10(wd) through the lowest point and its
    neighbours (the lowest grid point itself when it lies on the grid's edge)."""
    x, k = np.log10(wds), int(np.argmin(losses))
    if k in (0, len(wds) - 1):
        return float(wds[k])
    a, b, _ = np.polyfit(x[k - 1:k + 2], losses[k - 1:k + 2], 2)
    return float(10 ** (-b / (2 * a)))


def slope(lrs, bests):
    """d log(best wd) / d log(lr): 0 when the best wd stays put, -1 when it goes as 1 / lr."""
    return float(np.polyfit(np.log10(lrs), np.log10(bests), 1)[0])


def shrinkage(cfg, seed, rule, lr, wd, train):
    """Per conv weight: (gradient RMS, fraction of w removed per step by the decay term).

    Train cfg.warmup steps at constant ``lr`` with the decay; from there take the same cfg.branch
    steps (same batches) twice, with and without the decay; compare where each weight ends."""
    tinypix.manual_seed(seed)
    model = plain_net(cfg.width)
    optimizer = make_optimizer(model, rule, lr, wd)
    train_steps(model, optimizer, train, cfg.warmup, cfg.decay_batch, np.random.default_rng(seed))
    weights = [p for p in model.parameters() if p.ndim > 1]
    t = optimizer.state[weights[0]]["step"]
    rms = np.concatenate([np.sqrt(optimizer.state[p]["exp_avg_sq"] / (1 - 0.999 ** t)).ravel() for p in weights])
    start = np.concatenate([p.detach().numpy().ravel() for p in weights])
    ends = []
    for decay in (wd, 0.0):
        branch = copy.deepcopy(model)
        branch_optimizer = make_optimizer(branch, rule, lr, decay)
        branch_optimizer.load_state_dict(optimizer.state_dict())
        branch_optimizer.param_groups[0]["weight_decay"] = decay
        train_steps(branch, branch_optimizer, train, cfg.branch, cfg.decay_batch, np.random.default_rng(seed + 1))
        ends.append(np.concatenate([p.detach().numpy().ravel() for p in branch.parameters() if p.ndim > 1]))
    keep = np.abs(start) > np.median(np.abs(start))   # the fraction of a weight near 0 says little
    return rms[keep], (ends[1][keep] - ends[0][keep]) / start[keep] / cfg.branch


def unevenness(rms, shrink):
    """Median shrink of the 10% of weights with the smallest gradient RMS over that of the 10% largest."""
    order = np.argsort(rms)
    n = max(1, len(order) // 10)
    return float(np.median(shrink[order[:n]]) / np.median(shrink[order[-n:]]))


def decay_seed(cfg, seed, lrs, wds):
    """One seed of part 2: the (lr, wd) grid of held-out losses for both rules, the best wd per lr
    and its slope, and the per-weight shrinkage at the middle lr and each rule's best grid wd there."""
    train, test = scenes(cfg.train_scenes, cfg.size, seed), scenes(cfg.test_scenes, cfg.size, seed + 1000)
    result = {"losses": {}, "bests": {}, "slopes": {}, "uneven": {}, "clouds": {}}
    for rule in RULES:
        grid = np.array([[held_out_loss(cfg, seed, rule, lr, wd, train, test) for wd in wds[rule]] for lr in lrs])
        result["losses"][rule] = grid
        result["bests"][rule] = [best_wd(wds[rule], row) for row in grid]
    result["bests"][PAPER] = list(lrs * np.array(result["bests"]["AdamW"]))  # lambda = alpha * wd
    for rule, bests in result["bests"].items():
        result["slopes"][rule] = slope(lrs, bests)
    middle = len(lrs) // 2
    for rule in RULES:
        wd = wds[rule][int(np.argmin(result["losses"][rule][middle]))]
        rms, shrink = shrinkage(cfg, seed, rule, lrs[middle], wd, train)
        result["uneven"][rule] = unevenness(rms, shrink)
        result["clouds"][rule] = (rms, shrink, wd)
    return result


def part2(cfg):
    wds = {"Adam + L2": np.array(cfg.l2_wds), "AdamW": np.array(cfg.adamw_wds)}
    lrs = np.array(cfg.lrs)
    runs = []
    for seed in cfg.seeds:
        with common.Stopwatch() as t:
            runs.append(decay_seed(cfg, seed, lrs, wds))
        best = "; ".join(f"{rule} " + " ".join(f"{b:.2g}" for b in bests) for rule, bests in runs[-1]["bests"].items())
        print(f"  seed {seed}: grid and shrinkage in {t.seconds:.0f} s; best wd per lr: {best}", flush=True)

    def over_seeds(key, rule):
        return np.array([run[key][rule] for run in runs])

    for rule in RULES:
        bests = over_seeds("bests", rule)
        rows = [[f"{lr:g}"] + list(row) + [common.spread(bests[:, i])]
                for i, (lr, row) in enumerate(zip(lrs, over_seeds("losses", rule).mean(0)))]
        common.print_table(["lr \\ wd"] + [f"{wd:g}" for wd in wds[rule]] + ["best wd"], rows,
                           title=f"{rule}: held-out cross-entropy after {cfg.steps} steps (cosine schedule), "
                                 f"mean over {len(cfg.seeds)} seed(s); best wd mean ± sd")
    rows = [[rule, common.spread(over_seeds("slopes", rule))]
            + [common.spread(over_seeds("bests", rule)[:, i]) for i in range(len(lrs))] for rule in RULES + (PAPER,)]
    common.print_table(["decay", "slope of log best wd vs log lr"] + [f"best at lr {lr:g}" for lr in lrs], rows,
                       title="Where the best decay sits (AdamW's runs read as tinypix's wd and as the paper's "
                             "lambda = lr * wd)")
    rows = [[rule, runs[0]["clouds"][rule][2], common.spread(over_seeds("uneven", rule))] for rule in RULES]
    common.print_table(["decay", "wd (seed 0)", "shrink of low-gradient / high-gradient weights"], rows,
                       title=f"Shrinkage per weight at lr {lrs[len(lrs) // 2]:g} (each rule's best wd there)")
    draw(cfg, lrs, wds, runs)

    moves = {rule: np.abs(over_seeds("slopes", rule)) for rule in RULES + (PAPER,)}
    return [dict(claim="the best wd moves with lr for Adam + L2, not for AdamW (tinypix's wd, applied as lr * wd); "
                       "|slope of log best wd against log lr|",
                 better=moves["AdamW"], worse=moves["Adam + L2"], names=("AdamW", "Adam + L2"), higher=False,
                 margin=0.25),
            dict(claim="the best decay moves with lr for Adam + L2, not for AdamW in the paper's form "
                       "(w -= eta_t * lambda * w); |slope|",
                 better=moves[PAPER], worse=moves["Adam + L2"], names=("AdamW lambda", "Adam + L2"), higher=False,
                 margin=0.25),
            dict(claim="L2 inside Adam barely decays weights with a large gradient history, AdamW decays all alike "
                       "(shrink of the low-gradient 10% of weights over that of the high-gradient 10%)",
                 better=over_seeds("uneven", "Adam + L2"), worse=over_seeds("uneven", "AdamW"),
                 names=("Adam + L2", "AdamW"), margin=2.0)]


def draw(cfg, lrs, wds, runs):
    """weight_decay.png: the mean loss grids with each row's best wd; shrinkage.png: seed 0's weights."""
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 3.8), gridspec_kw=dict(wspace=0.4))
    for ax, rule in zip(axes, RULES):
        image = ax.imshow(np.mean([run["losses"][rule] for run in runs], axis=0), cmap="viridis_r", aspect="auto",
                          origin="lower")
        fig.colorbar(image, ax=ax, label="held-out cross-entropy")
        ax.set_xticks(range(len(wds[rule])), [f"{wd:g}" for wd in wds[rule]])
        ax.set_yticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
        best = np.mean([np.log10(run["bests"][rule]) for run in runs], axis=0)   # geometric mean over seeds
        ax.plot(np.interp(best, np.log10(wds[rule]), np.arange(len(wds[rule]))), np.arange(len(lrs)), "wo-",
                label="best wd")
        ax.set_xlabel("wd")
        ax.set_ylabel("lr")
        ax.set_title(rule)
        ax.legend(fontsize=8)
    common.save_figure(fig, cfg.out, "weight_decay.png")

    lr = lrs[len(lrs) // 2]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for rule, (rms, shrink, wd) in runs[0]["clouds"].items():
        ax.loglog(np.maximum(rms, 1e-7), np.maximum(shrink, 1e-6), ".", ms=3, alpha=0.5, label=f"{rule}, wd {wd:g}")
    l2_wd, adamw_wd = runs[0]["clouds"]["Adam + L2"][2], runs[0]["clouds"]["AdamW"][2]
    grid = np.logspace(np.log10(lr * l2_wd * cfg.branch), -1, 20)   # up to a weight's full removal over the branch
    ax.loglog(grid, lr * l2_wd / grid, "C0--", lw=1, label="lr * wd / RMS (L2's term divided by sqrt(v))")
    ax.axhline(lr * adamw_wd, color="C1", lw=1, label="lr * wd (AdamW)")
    ax.set_xlabel("gradient RMS of the weight (sqrt of Adam's second moment)")
    ax.set_ylabel("fraction of w removed per step by decay")
    ax.set_title(f"Per-weight shrinkage at lr {lr:g}, seed {cfg.seeds[0]}\n"
                 "(values <= 1e-6, or negative, drawn at 1e-6)", fontsize=10)
    ax.legend(fontsize=8)
    common.save_figure(fig, cfg.out, "shrinkage.png")


def main():
    cfg = common.setup("init_and_decay", __doc__, FULL, QUICK)
    lessons = part1(cfg) + part2(cfg)
    for lesson in lessons:
        common.lesson(**lesson)


if __name__ == "__main__":
    main()
