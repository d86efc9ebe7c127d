"""The two wrong ways to label every pixel, and what the U-Net does instead.

Lecture idea: a pixel's class depends on context -- a brown pixel may be box, floor or wall.
Two obvious designs get that context at a price:

(a) A stack of 3x3 convolutions at full resolution, no downsampling. After n layers each output
    sees a (2n + 1) x (2n + 1) window, so seeing across a 256-pixel image takes ~128 layers, and
    every layer keeps a full-resolution activation map for the backward pass: memory grows like
    n * C * H * W. The script prints that table, measures the receptive field by backpropagating
    from one output pixel, and trains such a stack with the same number of parameters as a
    U-Net (a U-Net's pooling grows the receptive field geometrically instead).

(b) Classify each pixel from a k x k patch around it, with a small CNN run on every patch
    separately. The patch is all the context there is, and neighbouring patches overlap almost
    entirely, so the same features are computed about k^2 times. The script trains patch
    classifiers for two patch sizes, and times them against one U-Net pass over the image.

Run:  python examples/wrong_ways.py           (full, a few minutes on 2 CPU cores)
      python examples/wrong_ways.py --quick   (reduced: checks that it runs)
"""
import numpy as np

import common
import tinypix
import tinypix.nn as nn
from tinypix import optim
from tinypix.data import DataLoader, SyntheticScenes
from tinypix.metrics import ConfusionMatrix
from tinypix.models import UNet
from tinypix.training import compute_loss
from tinypix.viz import colorize_labels

FULL = dict(size=32, train_scenes=300, test_scenes=100, batch=16, steps=300, base=8, stack_width=32, lr=2e-3,
            patch_sizes=(5, 13), patch_batch=256, patch_steps=400, timed_images=20)
QUICK = dict(size=32, train_scenes=8, test_scenes=4, batch=4, steps=2, base=4, stack_width=8, lr=2e-3,
             patch_sizes=(3, 5), patch_batch=32, patch_steps=2, timed_images=2)


# -- (a) the full-resolution stack ----------------------------------------------------------------
def memory_table():
    """Receptive field and activation memory of n stacked 3x3 convs on a 256x256 image, 64 channels."""
    H = W = 256
    C = 64
    rows = []
    for n in (1, 2, 4, 8, 16, 32, 64, 128):
        floats = n * C * H * W          # one full-resolution map per layer, kept for backward
        rows.append([n, 2 * n + 1, f"{floats * 4 / 2 ** 20:.0f} MiB", f"{16 * floats * 4 / 2 ** 30:.1f} GiB"])
    common.print_table(["3x3 layers n", "receptive field 2n+1", "activations / image", "batch of 16"], rows,
                       title=f"(a) a stack of 3x3 convolutions at full resolution, {H}x{W} image, {C} channels, "
                             "float32 (ReLU/BatchNorm outputs would add more)")


def conv_stack(width, layers, out_channels=4):
    """``layers`` of (3x3 conv, BatchNorm, ReLU) at full resolution, then a 1x1 conv to class scores."""
    modules, c = [], 3
    for _ in range(layers):
        modules += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        c = width
    return nn.Sequential(*modules, nn.Conv2d(width, out_channels, 1))


def stack_matching(target_params, width):
    """The number of layers that brings a width-``width`` stack closest to ``target_params``."""
    best = min(range(1, 200), key=lambda n: abs(common.count_parameters(conv_stack(width, n)) - target_params))
    return best


def measured_receptive_field(model, size):
    """Width of the input region that one output pixel (the centre) depends on, by backprop."""
    model.eval()
    x = tinypix.randn(1, 3, size, size, requires_grad=True)
    y = model(x)
    y[0, 0, size // 2, size // 2].backward()
    model.train()
    cols = np.nonzero(np.abs(x.grad.numpy()[0]).sum(axis=(0, 1)) > 0)[0]
    return int(cols.max() - cols.min() + 1)


def segmentation_loss(model, batch):
    return compute_loss("segmentation", model(batch["image"]), batch)


def part_a(cfg, train_set, test):
    memory_table()
    tinypix.manual_seed(cfg.seed)
    unet = UNet(3, 4, base_channels=cfg.base, depth=3)
    budget = common.count_parameters(unet)
    layers = stack_matching(budget, cfg.stack_width)
    tinypix.manual_seed(cfg.seed)
    stack = conv_stack(cfg.stack_width, layers)
    loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=True, seed=cfg.seed)
    rows, predictions = [], {}
    for name, model in ((f"U-Net (base {cfg.base}, 3 poolings)", unet),
                        (f"{layers} x (3x3 conv, {cfg.stack_width} ch) at full res", stack)):
        rf = measured_receptive_field(model, 4 * cfg.size)
        print(f"training {name}: {common.count_parameters(model)} parameters, receptive field {rf} px")
        with common.Stopwatch() as t:
            common.train(model, loader, segmentation_loss, cfg.steps, optim.Adam(model.parameters(), lr=cfg.lr),
                         log_every=max(cfg.steps // 3, 1), name=name.split()[0])
        _, metrics = common.evaluate(model, DataLoader(SyntheticScenesView(test), batch_size=50), "segmentation")
        predictions[name] = common.predict(model, test["image"][:4]).numpy().argmax(1)
        rows.append([name, common.count_parameters(model), rf, metrics["miou"], metrics["pixel_accuracy"],
                     f"{1000 * t.seconds / max(cfg.steps, 1):.0f}"])
    common.print_table(["model", "params", "receptive field px", "held-out mIoU", "pixel acc", "ms / step"], rows,
                       title=f"(a) same parameter budget, {cfg.steps} steps, {cfg.size}x{cfg.size} scenes")
    return predictions


class SyntheticScenesView:
    """A batch dict of Tensors seen as a dataset of samples (so a DataLoader can re-batch it)."""

    def __init__(self, batch):
        self.arrays = {k: v.numpy() for k, v in batch.items()}

    def __len__(self):
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(i)
        return {k: a[i] for k, a in self.arrays.items()}


# -- (b) one patch per pixel --------------------------------------------------------------------------
def patch_classifier(k):
    """A small CNN for one k x k patch: two valid 3x3 convs, then a linear layer to 4 class scores."""
    inner = k - 4 if k > 4 else 1
    convs = [nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3), nn.ReLU()] if k > 4 else \
            [nn.Conv2d(3, 16, k), nn.ReLU()]
    return nn.Sequential(*convs, nn.Flatten(), nn.Linear(16 * inner * inner, 4))


def patches(images, k):
    """images: (N, 3, H, W) -> (N, H, W, 3, k, k): the k x k patch centred on every pixel (zero-padded)."""
    p = k // 2
    padded = np.pad(images, ((0, 0), (0, 0), (p, p), (p, p)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(2, 3))   # (N, 3, H, W, k, k)
    return windows.transpose(0, 2, 3, 1, 4, 5)


def label_image_by_patches(model, image, k):
    """Classify every pixel of one image (3, H, W) from its own patch: H * W separate CNN runs."""
    H, W = image.shape[1:]
    x = np.ascontiguousarray(patches(image[None], k).reshape(H * W, 3, k, k))
    return common.predict(model, tinypix.from_numpy(x)).numpy().argmax(1).reshape(H, W)


def part_b(cfg, train_set, test, unet_time_model):
    images = np.stack([train_set[i]["image"] for i in range(len(train_set))])
    masks = np.stack([train_set[i]["mask"] for i in range(len(train_set))])
    where = np.argwhere(masks != 255)                        # (pixel count, 3): image, row, column
    rng = np.random.default_rng(cfg.seed)
    rows, predictions = [], {}
    test_images, test_masks = test["image"].numpy(), test["mask"].numpy()
    for k in cfg.patch_sizes:
        tinypix.manual_seed(cfg.seed)
        model = patch_classifier(k)
        optimizer = optim.Adam(model.parameters(), lr=cfg.lr)
        all_patches = patches(images, k)
        with common.Stopwatch() as t:
            for step in range(cfg.patch_steps):
                pick = where[rng.integers(0, len(where), cfg.patch_batch)]
                x = tinypix.from_numpy(np.ascontiguousarray(all_patches[pick[:, 0], pick[:, 1], pick[:, 2]]))
                y = tinypix.from_numpy(masks[pick[:, 0], pick[:, 1], pick[:, 2]])
                loss = compute_loss("segmentation", model(x), {"mask": y})
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        confusion = ConfusionMatrix(4)
        with common.Stopwatch() as timer:
            labels = np.stack([label_image_by_patches(model, img, k) for img in test_images[:cfg.timed_images]])
        per_image = timer.seconds / len(labels)
        rest = [label_image_by_patches(model, img, k) for img in test_images[cfg.timed_images:]]
        labels = np.concatenate([labels] + ([np.stack(rest)] if rest else []))
        confusion.update(labels, test_masks)
        predictions[f"{k}x{k} patches"] = labels[:4]
        rows.append([f"{k}x{k} patch -> small CNN, per pixel", common.count_parameters(model), confusion.miou(),
                     confusion.pixel_accuracy(), f"{1000 * per_image:.0f}", f"{t.seconds:.0f}"])
    with common.Stopwatch() as timer:
        for img in test_images[:cfg.timed_images]:
            common.predict(unet_time_model, tinypix.from_numpy(np.ascontiguousarray(img[None])))
    rows.append(["U-Net of part (a), whole image at once", common.count_parameters(unet_time_model), "see (a)", "",
                 f"{1000 * timer.seconds / cfg.timed_images:.0f}", ""])
    common.print_table(["model", "params", "held-out mIoU", "pixel acc", "ms / image", "train s"], rows,
                       title=f"(b) classify each pixel from its patch, {cfg.patch_steps} steps of "
                             f"{cfg.patch_batch} patches; timed on {cfg.timed_images} images of {cfg.size}x{cfg.size}")
    return predictions


def main():
    cfg = common.setup("wrong_ways", __doc__, FULL, QUICK)
    train_set = SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=cfg.seed)
    test = next(iter(DataLoader(SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=cfg.seed + 1000),
                                batch_size=cfg.test_scenes)))
    predictions = part_a(cfg, train_set, test)
    tinypix.manual_seed(cfg.seed)
    predictions.update(part_b(cfg, train_set, test, UNet(3, 4, base_channels=cfg.base, depth=3)))

    plt = common.pyplot()
    n, names = min(3, cfg.test_scenes), list(predictions)
    fig, axes = plt.subplots(n, 2 + len(names), figsize=(2.2 * (2 + len(names)), 2.3 * n), squeeze=False)
    for r in range(n):
        pics = [common.as_rgb(test["image"].numpy()[r]), colorize_labels(test["mask"].numpy()[r])]
        pics += [colorize_labels(predictions[name][r]) for name in names]
        for c, (ax, pic) in enumerate(zip(axes[r], pics)):
            ax.imshow(pic, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title((["input", "truth"] + names)[c], fontsize=7)
    common.save_figure(fig, cfg.out, "predictions.png")


if __name__ == "__main__":
    main()
