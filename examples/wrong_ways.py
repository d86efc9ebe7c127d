"""The two wrong ways to label every pixel, and what the U-Net and the FCN do instead.

Lecture idea: a pixel's class depends on context. The data here makes that literal
(``tinypix.data.context.ContextScenes``): the same textured object is a boat on water and a car on
a road, so a pixel inside the object can only be labelled by looking far enough to see what it
stands on. For a k x k view of each pixel the script computes the best mIoU any labeler could
reach (``context_ceiling``): 5 px -> about 0.68, 13 -> 0.89, 29 -> 1.00 on 32 x 32 scenes.

(a) A stack of 3x3 convolutions at full resolution sees 2n + 1 pixels after n layers and keeps a
    full-resolution map per layer for backward. On 48 x 48 scenes (objects up to 43 px) a U-Net
    is trained against two such stacks of its own full-resolution width: one with the same
    multiply-adds per image (16 layers, 33 px) and one deep enough to see the whole picture (24
    layers). The table prints the measured CPU time per training step and the activation memory
    from ``tinypix.summary``.

(b) Classify each pixel from a k x k patch around it with a small CNN (two valid 3x3 convs and a
    Linear layer), run on every patch separately. A bigger window sees more context, so labels
    better, and costs more per image: neighbouring patches overlap almost entirely and the same
    features are recomputed for each. The same classifier with its Linear layer rewritten as a
    convolution (weights copied) is a fully convolutional net: one pass over the padded image
    gives every pixel's label -- identical labels, a fraction of the cost (the lecture's
    32 - 3 + 1 = 30 outputs of a 3 x 3 filter, made real).

(c) Metrics: an all-background labeler scores a high pixel accuracy and a low mIoU.

Run:  python examples/wrong_ways.py             (full: 3 seeds, a few minutes on 2 CPU cores)
      python examples/wrong_ways.py --seeds 1   (one seed)
      python examples/wrong_ways.py --quick     (reduced: checks that it runs)
"""
import time

import numpy as np

import common
import tinypix
import tinypix.nn as nn
from tinypix import optim
from tinypix.data import DataLoader
from tinypix.data.context import BOAT, CAR, ContextScenes, context_ceiling, decided
from tinypix.metrics import ConfusionMatrix
from tinypix.models import UNet
from tinypix.summary import format_bytes, summary, wrap_forwards
from tinypix.training import compute_loss
from tinypix.viz import colorize_labels

FULL = dict(size=32, train_scenes=400, test_scenes=100, windows=(5, 13, 29), patch_width=8, patch_batch=128,
            patch_steps=300, timed_images=2, big=48, batch=16, steps=400, base=4, depth=3, lr=3e-3)
QUICK = dict(size=16, train_scenes=8, test_scenes=4, windows=(5, 7, 9), patch_width=4, patch_batch=16,
             patch_steps=2, timed_images=1, big=16, batch=2, steps=2, base=2, depth=2, lr=3e-3)
NUM_CLASSES = ContextScenes.num_classes


def cpu_seconds():
    """CPU time of this process, all its threads together: the work a run does, which other
    programs on the machine hardly change (unlike the wall-clock time)."""
    return time.process_time()


def shown(masks):
    """Indices of the scenes to draw: the first two boats and the first two cars."""
    kinds = masks.max(axis=(1, 2))
    return np.concatenate([np.nonzero(kinds == kind)[0][:2] for kind in (BOAT, CAR)])


def held_out(labels, masks):
    """The ConfusionMatrix of predicted labels (N, H, W) against the true masks."""
    confusion = ConfusionMatrix(NUM_CLASSES)
    confusion.update(labels, masks)
    return confusion


# -- (b) one patch per pixel, and the same classifier as one fully convolutional pass ----------
def patch_classifier(k, width=8):
    """A small CNN for one k x k patch (k >= 5): two valid 3x3 convs, then Linear to class scores.

    (N, 3, k, k) -> (N, 3). The convs leave a (width, k - 4, k - 4) map, all of which the Linear
    layer reads, so the whole window decides the label.
    """
    inner = k - 4
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(width * inner * inner, NUM_CLASSES))


def as_fully_convolutional(classifier):
    """The patch classifier with its Flatten + Linear rewritten as one convolution, weights copied.

    Linear(width * i * i -> C) read the flattened (width, i, i) map; a Conv2d(width, C, i) with the
    same numbers as its (C, width, i, i) kernel computes exactly that sum at one position, and at
    every other position of a bigger input too. On an image padded by k // 2 it gives (N, C, H, W).
    """
    *convs, flatten, linear = list(classifier)
    width = convs[-2].out_channels
    inner = round((linear.in_features // width) ** 0.5)
    conv = nn.Conv2d(width, linear.out_features, inner)
    conv.weight.data[...] = linear.weight.data.reshape(linear.out_features, width, inner, inner)
    conv.bias.data[...] = linear.bias.data
    return nn.Sequential(*convs, conv)


def pad(images, k):
    """(N, 3, H, W) zero-padded by k // 2 on each side, so a k x k window fits around every pixel."""
    p = k // 2
    return np.pad(images, ((0, 0), (0, 0), (p, p), (p, p)))


def patches(images, k):
    """(N, 3, H, W) -> (N, H, W, 3, k, k): the k x k patch centred on every pixel (a view, no copy)."""
    windows = np.lib.stride_tricks.sliding_window_view(pad(images, k), (k, k), axis=(2, 3))
    return windows.transpose(0, 2, 3, 1, 4, 5)


def train_patch_classifier(k, images, masks, steps, batch, lr, seed, width=8):
    """Train ``patch_classifier(k)`` on ``batch`` random pixels' patches a step; return the model."""
    tinypix.manual_seed(seed)
    model = patch_classifier(k, width)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    every_patch = patches(images, k)
    rng = np.random.default_rng(seed)
    N, H, W = masks.shape
    model.train()
    for _ in range(steps):
        n, r, c = rng.integers(0, N, batch), rng.integers(0, H, batch), rng.integers(0, W, batch)
        x = tinypix.from_numpy(np.ascontiguousarray(every_patch[n, r, c]))
        loss = compute_loss("segmentation", model(x), {"mask": tinypix.from_numpy(masks[n, r, c])})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def scores_by_patches(model, image, k):
    """Class scores (3, H, W) of one image (3, H, W): H * W separate runs of the patch CNN."""
    H, W = image.shape[1:]
    x = np.ascontiguousarray(patches(image[None], k).reshape(H * W, 3, k, k))
    return common.predict(model, tinypix.from_numpy(x)).numpy().T.reshape(-1, H, W)


def scores_fully_convolutional(fcn, images, k):
    """Class scores (N, 3, H, W) of images (N, 3, H, W): one pass of the convolutional form."""
    return common.predict(fcn, tinypix.from_numpy(np.ascontiguousarray(pad(images, k)))).numpy()


def best_time(run, repeats=3):
    """(CPU seconds of the cheapest of ``repeats`` runs after a warm-up, the result).

    CPU time (all threads) counts the work a run does, which other programs on the machine
    hardly change; they can only add to it, so the cheapest run is the closest to its own cost.
    """
    result = run()
    times = []
    for _ in range(repeats):
        start = cpu_seconds()
        run()
        times.append(cpu_seconds() - start)
    return min(times), result


def part_b(cfg, seed):
    """Patch classifiers for each window; per window: mIoU, cost per image both ways, label agreement."""
    train_x, train_y = ContextScenes(cfg.train_scenes, cfg.size, seed=seed).arrays()
    test_x, test_y = ContextScenes(cfg.test_scenes, cfg.size, seed=seed + 1000).arrays()
    timed = test_x[:cfg.timed_images]
    results, pictures = {}, {}
    for k in cfg.windows:
        model = train_patch_classifier(k, train_x, train_y, cfg.patch_steps, cfg.patch_batch, cfg.lr, seed,
                                       cfg.patch_width)
        fcn = as_fully_convolutional(model)
        patch_s, by_patch = best_time(lambda: np.stack([scores_by_patches(model, image, k) for image in timed]))
        fcn_s, by_fcn = best_time(lambda: scores_fully_convolutional(fcn, timed, k))
        labels = scores_fully_convolutional(fcn, test_x, k).argmax(1)
        confusion = held_out(labels, test_y)
        patch_work = cfg.size ** 2 * multiply_adds(model, (3, k, k))  # one run per pixel
        results[k] = dict(miou=confusion.miou(), pixel_accuracy=confusion.pixel_accuracy(),
                          ceiling=context_ceiling(test_y, k).miou(), params=common.count_parameters(model),
                          patch_ms=1000 * patch_s / len(timed), fcn_ms=1000 * fcn_s / len(timed),
                          differ=int((by_patch.argmax(1) != by_fcn.argmax(1)).sum()), pixels=by_fcn[:, 0].size,
                          score_gap=float(np.abs(by_patch - by_fcn).max()),
                          work=patch_work / multiply_adds(fcn, pad(timed, k).shape[1:]))
        pictures[f"{k}x{k} window"] = labels[shown(test_y)]
    background = held_out(np.zeros_like(test_y), test_y)
    results["all background"] = dict(miou=background.miou(), pixel_accuracy=background.pixel_accuracy())
    return results, (test_x[shown(test_y)], test_y[shown(test_y)], pictures)


# -- (a) full-resolution stacks against a U-Net ------------------------------------------------
def conv_stack(width, layers, out_channels=NUM_CLASSES):
    """``layers`` of (3x3 conv, BatchNorm, ReLU) at full resolution, then a 1x1 conv to class scores."""
    modules, c = [], 3
    for _ in range(layers):
        modules += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        c = width
    return nn.Sequential(*modules, nn.Conv2d(width, out_channels, 1))


def multiply_adds(model, input_shape):
    """Multiply-adds of one forward pass on one image (C, H, W): convs, transpose convs, Linear."""
    total = 0

    def count(name, module, forward):
        def counted(x):
            nonlocal total
            y = forward(x)
            if isinstance(module, nn.Conv2d):  # every output pixel: one product per weight
                total += module.weight.numel() * y.shape[-2] * y.shape[-1]
            elif isinstance(module, nn.ConvTranspose2d):  # every input pixel: one product per weight
                total += module.weight.numel() * x.shape[-2] * x.shape[-1]
            elif isinstance(module, nn.Linear):
                total += module.weight.numel()
            return y
        return counted

    with wrap_forwards(model, count):
        common.predict(model, tinypix.zeros(1, *input_shape))
    return total


def stack_layers(target, width, input_shape):
    """The number of layers that brings a width-``width`` stack's multiply-adds closest to ``target``."""
    one, two = (multiply_adds(conv_stack(width, n), input_shape) for n in (1, 2))
    return max(1, round(1 + (target - one) / (two - one)))  # each more layer adds the same


def part_a_models(cfg):
    """name -> (what it is, a function making it freshly initialised): the U-Net and two stacks."""
    shape = (3, cfg.big, cfg.big)
    unet = lambda: UNet(3, NUM_CLASSES, base_channels=cfg.base, depth=cfg.depth)  # noqa: E731
    same_cost = stack_layers(multiply_adds(unet(), shape), cfg.base, shape)
    whole = cfg.big // 2  # 2n + 1 > big: every output pixel sees the whole picture
    return {"U-Net": (f"{cfg.depth} poolings", unet),
            f"{same_cost}-layer stack": ("with as many multiply-adds", lambda: conv_stack(cfg.base, same_cost)),
            f"{whole}-layer stack": ("that sees the whole picture", lambda: conv_stack(cfg.base, whole))}


def settle_batch_norm(model, loader, batches=50):
    """Re-estimate every BatchNorm's running statistics with the trained weights: the plain average
    over ``batches`` training batches, run without a graph.

    Training leaves an exponential average over the last few batches, taken while the weights were
    still moving; the held-out pass normalizes with it instead of a batch's own statistics. On
    these scenes that mismatch can cost a trained U-Net a third of its mIoU. Every model here gets
    the same treatment.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = None  # a cumulative average: every batch counts the same ...
        m.num_batches_tracked.data[...] = 0  # ... and the first one replaces the old statistics
    model.train()
    with tinypix.no_grad():
        for batch, _ in zip(common.forever(loader), range(batches)):
            model(batch["image"])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def segmentation_loss(model, batch):
    return compute_loss("segmentation", model(batch["image"]), batch)


def part_a(cfg, seed):
    """Train each model of ``part_a_models`` on the big scenes; per model: mIoU, ms/step, memory, ..."""
    train_set = ContextScenes(cfg.train_scenes, cfg.big, seed=seed)
    test_x, test_y = ContextScenes(cfg.test_scenes, cfg.big, seed=seed + 1000).arrays()
    shape = (3, cfg.big, cfg.big)
    results, pictures = {}, {}
    for name, (_, make) in part_a_models(cfg).items():
        tinypix.manual_seed(seed)
        model = make()
        loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=True, seed=seed)
        start = cpu_seconds()
        common.train(model, loader, segmentation_loss, cfg.steps, optim.Adam(model.parameters(), lr=cfg.lr))
        seconds = cpu_seconds() - start
        settle_batch_norm(model, loader)
        labels = np.concatenate([common.predict(model, tinypix.from_numpy(test_x[i:i + 25])).numpy().argmax(1)
                                 for i in range(0, len(test_x), 25)])
        info = summary(model, shape, batch_size=cfg.batch)
        results[name] = dict(miou=held_out(labels, test_y).miou(), ms=1000 * seconds / cfg.steps,
                             params=info.total_params, macs=multiply_adds(model, shape),
                             memory=info.activation_bytes, rf=info.receptive_field)
        pictures[name] = labels[shown(test_y)]
    return results, (test_x[shown(test_y)], test_y[shown(test_y)], pictures)


# -- tables, lessons, pictures -----------------------------------------------------------------
def over_seeds(runs, key, field):
    """One number per seed: ``runs[seed][key][field]``."""
    return [run[key][field] for run in runs]


def ceiling_table(cfg):
    masks = ContextScenes(cfg.test_scenes, cfg.size, seed=cfg.seed + 1000).arrays()[1]
    big = ContextScenes(cfg.test_scenes, cfg.big, seed=cfg.seed + 1000).arrays()[1]
    windows = sorted({1, *cfg.windows, 2 * cfg.size - 1})
    rows = [[f"{k} x {k}" + (" (whole picture)" if k == 2 * cfg.size - 1 else ""),
             f"{decided(masks, k)[masks > 0].mean():.3f}", context_ceiling(masks, k).miou(),
             context_ceiling(big, k).miou()] for k in windows]
    common.print_table(["window", "object pixels it decides", f"best mIoU, {cfg.size} x {cfg.size}",
                        f"best mIoU, {cfg.big} x {cfg.big}"], rows,
                       title="the most any labeler can get from a k x k view of each pixel (context_ceiling; "
                             f"{cfg.test_scenes} held-out scenes)")


def report_b(cfg, runs):
    ks = cfg.windows
    rows = [[f"{k} x {k} patch CNN", runs[0][k]["params"], common.spread(over_seeds(runs, k, "ceiling")),
             common.spread(over_seeds(runs, k, "miou")), common.spread(over_seeds(runs, k, "pixel_accuracy")),
             common.spread(over_seeds(runs, k, "patch_ms")),
             common.spread(over_seeds(runs, k, "fcn_ms")), f"{runs[0][k]['work']:.1f}",
             f"{sum(over_seeds(runs, k, 'differ'))} of {sum(over_seeds(runs, k, 'pixels'))}",
             f"{max(over_seeds(runs, k, 'score_gap')):.1e}"] for k in ks]
    rows.append(["all background", 0, "", common.spread(over_seeds(runs, "all background", "miou")),
                 common.spread(over_seeds(runs, "all background", "pixel_accuracy"))] + [""] * 5)
    common.print_table(["labeler", "params", "best mIoU", "held-out mIoU", "pixel acc", "CPU ms/image per patch",
                        "CPU ms/image FCN", "multiply-adds per patch / FCN", "labels that differ",
                        "max score gap"], rows,
                       title=f"(b) one patch per pixel, {cfg.patch_steps} steps of {cfg.patch_batch} patches, "
                             f"{cfg.size} x {cfg.size} scenes; CPU times (all threads) on {cfg.timed_images} "
                             "images a seed; "
                             f"mean ± sd over {len(runs)} seeds")
    small, middle, large = ks
    common.lesson(f"more context helps: a {middle}x{middle} window labels better than {small}x{small}",
                  over_seeds(runs, middle, "miou"), over_seeds(runs, small, "miou"),
                  names=(f"mIoU {middle}x{middle}", f"{small}x{small}"))
    common.lesson(f"more context helps: a {large}x{large} window labels better than {middle}x{middle}",
                  over_seeds(runs, large, "miou"), over_seeds(runs, middle, "miou"),
                  names=(f"mIoU {large}x{large}", f"{middle}x{middle}"))
    common.lesson(f"and it costs more: labelling an image patch by patch takes longer with {large}x{large} "
                  f"windows than with {small}x{small}", over_seeds(runs, large, "patch_ms"),
                  over_seeds(runs, small, "patch_ms"), names=(f"CPU ms/image {large}x{large}", f"{small}x{small}"))
    # A one-pass labeling that changed any pixel's label would not be the same classifier: it counts
    # as infinitely slow, so the lesson cannot show.
    one_pass = [run[large]["fcn_ms"] if run[large]["differ"] == 0 else np.inf for run in runs]
    speedup = np.mean(over_seeds(runs, large, "patch_ms")) / np.mean(over_seeds(runs, large, "fcn_ms"))
    common.lesson(f"the {large}x{large} patch CNN rewritten as a fully convolutional net gives identical labels "
                  f"in one pass, with {runs[0][large]['work']:.0f}x fewer multiply-adds and {speedup:.0f}x less "
                  "CPU time", one_pass, over_seeds(runs, large, "patch_ms"), names=("CPU ms/image FCN", "per patch"),
                  higher=False)
    common.lesson("an all-background labeler scores a high pixel accuracy and a low mIoU",
                  over_seeds(runs, "all background", "pixel_accuracy"), over_seeds(runs, "all background", "miou"),
                  names=("pixel accuracy", "mIoU"), margin=0.3)


def report_a(cfg, runs):
    about = {name: what for name, (what, _) in part_a_models(cfg).items()}
    names = list(runs[0])
    unet = names[0]
    rows = [[f"{name} ({about[name]})", runs[0][name]["params"], f"{runs[0][name]['macs'] / 1e6:.1f} M",
             runs[0][name]["rf"], format_bytes(runs[0][name]["memory"]), common.spread(over_seeds(runs, name, "ms")),
             common.spread(over_seeds(runs, name, "miou"))] for name in names]
    common.print_table(["model", "params", "multiply-adds / image", "receptive field px",
                        f"activations, batch {cfg.batch}", "CPU ms / step", "held-out mIoU"], rows,
                       title=f"(a) {cfg.steps} steps of {cfg.batch} scenes {cfg.big} x {cfg.big}, width "
                             f"{cfg.base} at full resolution; mean ± sd over {len(runs)} seeds")
    for name in names[1:]:
        macs = runs[0][name]["macs"] / runs[0][unet]["macs"]
        memory = runs[0][name]["memory"] / runs[0][unet]["memory"]
        common.lesson(f"a U-Net beats a full-resolution {name} {about[name]} (receptive field "
                      f"{runs[0][name]['rf']} px, {macs:.1f}x the multiply-adds, {memory:.1f}x the activation memory)",
                      over_seeds(runs, unet, "miou"), over_seeds(runs, name, "miou"), names=("mIoU U-Net", "stack"))


def draw(cfg, part, filename):
    images, masks, predictions = part
    plt = common.pyplot()
    names = list(predictions)
    n, cols = len(images), 2 + len(names)
    fig, axes = plt.subplots(n, cols, figsize=(2.1 * cols, 2.2 * n), squeeze=False)
    for r in range(n):
        pics = [common.as_rgb(images[r]), colorize_labels(masks[r])] + [colorize_labels(predictions[m][r])
                                                                        for m in names]
        for c, (ax, pic) in enumerate(zip(axes[r], pics)):
            ax.imshow(pic, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title((["input", "truth (boat red, car green)"] + names)[c], fontsize=7)
    common.save_figure(fig, cfg.out, filename)


def draw_windows(cfg):
    """One scene, the windows around an object pixel, and which pixels each window decides."""
    scene = ContextScenes(1, cfg.size, seed=cfg.seed + 1000)[0]
    image, mask = scene["image"], scene["mask"]
    rows, cols = np.nonzero(mask)
    r, c = int(rows.mean()), int(cols.mean())  # an inner pixel of the object
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 1 + len(cfg.windows), figsize=(2.3 * (1 + len(cfg.windows)), 2.6))
    axes[0].imshow(common.as_rgb(image), interpolation="nearest")
    axes[0].set_title("input and windows", fontsize=8)
    for k, color in zip(cfg.windows, ("white", "yellow", "cyan")):
        axes[0].add_patch(plt.Rectangle((c - k / 2, r - k / 2), k, k, fill=False, edgecolor=color, lw=1.2))
    for ax, k in zip(axes[1:], cfg.windows):
        ax.imshow(colorize_labels(np.where(decided(mask, k), mask, 255)), interpolation="nearest")
        ax.set_title(f"{k}x{k} view (white: a guess)", fontsize=8)
    for ax in axes:
        ax.set_axis_off()
    common.save_figure(fig, cfg.out, "windows.png")


def main():
    cfg = common.setup("wrong_ways", __doc__, FULL, QUICK)
    start = cpu_seconds()
    ceiling_table(cfg)
    runs_b, runs_a = [], []
    for seed in cfg.seeds:
        results, pictures_b = part_b(cfg, seed)
        runs_b.append(results)
        results, pictures_a = part_a(cfg, seed)
        runs_a.append(results)
        scores = ", ".join(f"{name} {r['miou']:.3f}" for name, r in {**runs_a[-1], **{
            f"{k}x{k} window": runs_b[-1][k] for k in cfg.windows}}.items())
        print(f"seed {seed}: held-out mIoU {scores}; {cpu_seconds() - start:.0f} s of CPU time so far", flush=True)
    report_a(cfg, runs_a)
    report_b(cfg, runs_b)
    draw(cfg, pictures_b, "predictions.png")
    draw(cfg, pictures_a, "stacks.png")
    draw_windows(cfg)
    print(f"CPU time (user + system, all threads): {cpu_seconds() - start:.0f} s")


if __name__ == "__main__":
    main()
