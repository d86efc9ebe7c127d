"""Training from scratch, written out: the lecture's loop with no DataLoader and no optimizer class.

Lecture idea: training is a short loop, and every line of it is visible::

    for epoch in range(epochs):
        perm = a random permutation of the N training images      # a new order every epoch
        for start in range(0, N, B):
            idx = perm[start:start + B]                           # one minibatch
            loss = cross_entropy(model(images[idx]), masks[idx])  # forward
            loss.backward()                                       # dL/dw into every p.grad
            with no_grad():                                       # the SGD step, by hand
                for p in model.parameters():
                    p -= lr * p.grad
                    p.grad.zero_()                                # backward adds to p.grad

That is all ``tinypix.optim.SGD(params, lr)`` does without momentum or weight decay (PyTorch's
older spelling of the step is ``p.data -= lr * p.grad``). The script trains a small U-Net on the
built-in scenes this way, prints the training and held-out loss and the held-out mIoU after every
epoch, and checks two lessons:
  1. the loop learns: held-out mIoU above the all-background baseline (every pixel called the
     most common class), on every seed;
  2. the written-out step is SGD's step: the same model trained for the same minibatches by
     ``tinypix.optim.SGD`` ends with identical weights and BatchNorm statistics (bit for bit).

Run:  python examples/from_scratch.py           (full: 3 seeds, about half a minute on 2 CPU cores)
      python examples/from_scratch.py --quick   (reduced: checks that it runs)
"""
import os

import numpy as np

import common
import tinypix
import tinypix.nn.functional as F
from tinypix import optim, viz
from tinypix.data import SyntheticScenes
from tinypix.metrics import ConfusionMatrix
from tinypix.models import UNet

FULL = dict(size=32, train_scenes=160, test_scenes=100, epochs=20, batch=8, lr=0.3, base=8, depth=2,
            check_epochs=2)
QUICK = dict(size=16, train_scenes=8, test_scenes=4, epochs=2, batch=4, lr=0.3, base=4, depth=1, check_epochs=1)


def load(n, size, seed):
    """n built-in scenes as two Tensors: images (n, 3, size, size) and masks (n, size, size)."""
    scenes = SyntheticScenes(n, size=size, seed=seed)
    return (tinypix.from_numpy(np.stack([scenes[i]["image"] for i in range(n)])),
            tinypix.from_numpy(np.stack([scenes[i]["mask"] for i in range(n)])))


def train(model, images, masks, epochs, batch_size, lr, seed, optimizer=None, after_epoch=None):
    """The lecture's loop; returns the mean training loss of each epoch.

    Args:
        images, masks: the whole training set, (N, 3, H, W) and (N, H, W) Tensors.
        seed: seeds the generator of the permutations.
        optimizer: None for the written-out SGD step; an optimizer to take its ``step()`` and
            ``zero_grad()`` instead (the check that both give the same weights).
        after_epoch: called as ``after_epoch(epoch, train_loss)`` after each epoch.
    """
    rng = np.random.default_rng(seed)
    params = list(model.parameters())
    n = len(images)
    losses = []
    model.train()
    for epoch in range(1, epochs + 1):
        perm = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            loss = F.cross_entropy(model(images[idx]), masks[idx], ignore_index=255)
            loss.backward()
            if optimizer is None:                # the step, written out
                with tinypix.no_grad():          # an update is not part of the next graph
                    for p in params:
                        p -= lr * p.grad         # w <- w - lr * dL/dw, in place
                        p.grad.zero_()           # backward adds to .grad: start the next batch at 0
            else:
                optimizer.step()
                optimizer.zero_grad()
            total += loss.item() * len(idx)
        losses.append(total / n)
        if after_epoch:
            after_epoch(epoch, losses[-1])
    return losses


def evaluate(model, images, masks, batch_size=50):
    """Held-out (mean loss, mIoU, pixel accuracy), in eval mode (BatchNorm's running statistics)."""
    model.eval()
    confusion, total = ConfusionMatrix(SyntheticScenes.num_classes), 0.0
    with tinypix.no_grad():
        for start in range(0, len(images), batch_size):
            scores = model(images[start:start + batch_size])
            target = masks[start:start + batch_size]
            total += F.cross_entropy(scores, target, ignore_index=255).item() * len(target)
            confusion.update(scores, target)
    model.train()
    return total / len(images), confusion.miou(), confusion.pixel_accuracy()


def all_background(masks):
    """(mIoU, pixel accuracy) of calling every pixel background, the most common class."""
    confusion = ConfusionMatrix(SyntheticScenes.num_classes)
    confusion.update(np.zeros(masks.shape, dtype=np.int64), masks)
    return confusion.miou(), confusion.pixel_accuracy()


def make_model(cfg, seed):
    tinypix.manual_seed(seed)
    return UNet(3, SyntheticScenes.num_classes, base_channels=cfg.base, depth=cfg.depth)


def same_as_sgd(cfg, images, masks, seed):
    """Train two copies of one model for the same minibatches, by the written-out step and by
    optim.SGD; return (largest |difference| over the state_dicts, the written-out copy's
    state_dict, steps)."""
    by_hand, by_sgd = make_model(cfg, seed), make_model(cfg, seed)
    train(by_hand, images, masks, cfg.check_epochs, cfg.batch, cfg.lr, seed)
    train(by_sgd, images, masks, cfg.check_epochs, cfg.batch, cfg.lr, seed,
          optimizer=optim.SGD(by_sgd.parameters(), lr=cfg.lr))
    a, b = by_hand.state_dict(), by_sgd.state_dict()
    worst = max(float(np.abs(a[k].numpy().astype(np.float64) - b[k].numpy()).max()) for k in a)
    steps = cfg.check_epochs * -(-len(images) // cfg.batch)
    return worst, a, steps


def cpu_seconds():
    t = os.times()
    return t.user + t.system


def main():
    cfg = common.setup("from_scratch", __doc__, FULL, QUICK)
    images, masks = load(cfg.train_scenes, cfg.size, seed=cfg.seed)
    test_images, test_masks = load(cfg.test_scenes, cfg.size, seed=cfg.seed + 1000)
    base_miou, base_acc = all_background(test_masks.numpy())
    print(f"{cfg.train_scenes} training scenes, {cfg.test_scenes} held-out, {cfg.size}x{cfg.size}; "
          f"{cfg.epochs} epochs of minibatches of {cfg.batch}, plain SGD lr {cfg.lr}")

    rows, trained = [], []
    for seed in cfg.seeds:
        model = make_model(cfg, seed)
        history = []

        def after_epoch(epoch, train_loss, model=model, history=history, seed=seed):
            loss, miou, _ = evaluate(model, test_images, test_masks)
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": loss, "miou": miou})
            print(f"  seed {seed} epoch {epoch:3d}/{cfg.epochs}  train loss {train_loss:.4f}  "
                  f"held-out loss {loss:.4f}  held-out mIoU {miou:.3f}", flush=True)

        start = cpu_seconds()
        train(model, images, masks, cfg.epochs, cfg.batch, cfg.lr, seed, after_epoch=after_epoch)
        seconds = cpu_seconds() - start
        loss, miou, acc = evaluate(model, test_images, test_masks)
        trained.append(miou)
        rows.append([seed, history[-1]["train_loss"], loss, miou, acc, f"{seconds:.0f}"])
        if seed == cfg.seeds[0]:
            viz.save(viz.plot_curves(history, "miou"), os.path.join(cfg.out, "curves.png"))
            scores = common.predict(model, test_images[:4])
            viz.save(viz.plot_predictions("segmentation", test_images[:4], test_masks[:4], scores,
                                          class_names=SyntheticScenes.classes),
                     os.path.join(cfg.out, "predictions.png"))
            print(f"wrote {cfg.out}/curves.png and predictions.png")
    rows.append(["all background", "", "", base_miou, base_acc, ""])
    common.print_table(["seed", "final train loss", "held-out loss", "held-out mIoU", "pixel acc",
                        "CPU s (user+sys)"], rows, title="the written-out loop, held-out scenes")

    worst, state, steps = same_as_sgd(cfg, images, masks, cfg.seeds[0])
    common.lesson("training with the written-out loop learns (held-out mIoU above all-background)", trained,
                  [base_miou] * len(trained), names=("trained", "all background"))
    print(f"lesson: the written-out step p -= lr * p.grad is optim.SGD's step — "
          f"{'shown' if worst == 0 else 'NOT shown'} (max |difference| {worst:g} over {len(state)} weight and "
          f"BatchNorm tensors after the same {steps} steps)")


if __name__ == "__main__":
    main()
