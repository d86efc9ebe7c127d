"""Skip connections: what the coarse layers cannot say about boundaries, the fine ones can.

An encoder-decoder downsamples to see context, so its bottleneck (here 1/8 of the picture: 4 x 4
cells for 32 x 32 scenes) knows *what* is in the picture but only roughly *where* its edges run.
A decoder that sees only the bottleneck has to invent the boundaries by upsampling. Skip
connections hand the decoder the encoder's own full-resolution maps, and with them the exact
position of every edge. Two pairs of the same network with and without skips:

  U-Net without skips   the same encoder and decoder, each decoder block fed only the upsampled
                        coarser map (``UNet(..., skips=False)``);
  U-Net                 each decoder block also gets the encoder's map of its resolution;
  FCN-32s               class scores at 1/32, upsampled 32x in one step (at 32 x 32 a single
                        cell of scores for the whole picture);
  FCN-8s                the same net, with scores from the 1/16 and 1/8 maps fused in on the way
                        up (Long, Shelhamer and Darrell's skips).

Skips matter most where the label changes, so besides mIoU the script scores *boundary
accuracy*: the share of pixels right within ``radius`` = 2 px of a class boundary (any other label,
or the one-pixel ignore band the scenes put on every boundary, in the 5 x 5 window around the
pixel), against the same share on the interior pixels further away. Every model trains on the
same scenes, in the same order, with the same optimizer and steps; each pair is run over
``cfg.seeds`` (seed = weights, batches and data).

Run:  python examples/skips.py           (full: 3 seeds, about 1 minute on 2 CPU cores)
      python examples/skips.py --quick   (reduced: checks that it runs)
"""
import numpy as np

import common
import tinypix
from tinypix import optim, viz
from tinypix.data import DataLoader, SyntheticScenes
from tinypix.metrics import ConfusionMatrix
from tinypix.models import FCN, UNet
from tinypix.training import compute_loss

FULL = dict(size=32, train_scenes=300, test_scenes=100, batch=8, steps=250, base=8, depth=3, fcn_width=8,
            lr=3e-3, radius=2)
QUICK = dict(size=32, train_scenes=8, test_scenes=4, batch=4, steps=2, base=4, depth=3, fcn_width=4,
             lr=3e-3, radius=2)

MODELS = {
    "U-Net without skips": lambda cfg: UNet(3, 4, base_channels=cfg.base, depth=cfg.depth, skips=False),
    "U-Net": lambda cfg: UNet(3, 4, base_channels=cfg.base, depth=cfg.depth),
    "FCN-32s": lambda cfg: FCN(3, 4, variant="32s", width=cfg.fcn_width),
    "FCN-8s": lambda cfg: FCN(3, 4, variant="8s", width=cfg.fcn_width),
}
PAIRS = [("U-Net", "U-Net without skips"), ("FCN-8s", "FCN-32s")]


def boundary_band(mask, radius=2, ignore_index=255):
    """Pixels with a valid label that lie within ``radius`` px of a class boundary.

    Args:
        mask: (N, H, W) integer labels; ``ignore_index`` marks unlabelled pixels, which in
            SyntheticScenes are the one-pixel band on every boundary.
    Returns:
        (N, H, W) bool: True where the (2 radius + 1)^2 window around a labelled pixel holds another
        label (ignore_index counts as another label; the picture's border repeats the edge pixels).
    """
    mask = np.asarray(mask)
    n, h, w = mask.shape
    padded = np.pad(mask, ((0, 0), (radius, radius), (radius, radius)), mode="edge")
    near = np.zeros(mask.shape, dtype=bool)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            near |= padded[:, dy:dy + h, dx:dx + w] != mask
    return near & (mask != ignore_index)


def band_accuracies(pred, mask, radius=2, ignore_index=255):
    """(boundary accuracy, interior accuracy, boundary pixels, interior pixels) of labels ``pred``
    (N, H, W) against ``mask`` (N, H, W); ignore_index pixels count in neither."""
    pred, mask = np.asarray(pred), np.asarray(mask)
    band = boundary_band(mask, radius, ignore_index)
    interior = (mask != ignore_index) & ~band
    right = pred == mask
    return right[band].mean(), right[interior].mean(), int(band.sum()), int(interior.sum())


def predict_labels(model, images, batch=50):
    """Argmax labels (N, H, W) of ``images`` (N, 3, H, W), in eval mode, in batches."""
    return np.concatenate([common.predict(model, tinypix.tensor(images[i:i + batch])).argmax(1).numpy()
                           for i in range(0, len(images), batch)])


def train_and_score(name, cfg, seed, test_images, test_masks):
    """Train model ``name`` on the scenes of ``seed``; return its held-out scores and the model."""
    tinypix.manual_seed(seed)
    model = MODELS[name](cfg)
    loader = DataLoader(SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=seed), batch_size=cfg.batch,
                        shuffle=True, drop_last=True, seed=seed)
    with common.Stopwatch() as t:
        common.train(model, loader, lambda m, b: compute_loss("segmentation", m(b["image"]), b), cfg.steps,
                     optim.Adam(model.parameters(), lr=cfg.lr))
    pred = predict_labels(model, test_images)
    confusion = ConfusionMatrix(4)
    confusion.update(pred, test_masks)
    boundary, interior, _, _ = band_accuracies(pred, test_masks, cfg.radius)
    return dict(params=common.count_parameters(model), miou=confusion.miou(), boundary=boundary, interior=interior,
                seconds=t.seconds), model


def draw(models, images, masks, cfg, filename="predictions.png"):
    """Rows: scenes; columns: picture, truth, boundary band, then each model's labels."""
    plt = common.pyplot()
    band = boundary_band(masks, cfg.radius)
    preds = {name: predict_labels(model, images) for name, model in models.items()}
    columns = ["picture", "truth", f"band ({cfg.radius} px)"] + list(preds)
    fig, axes = plt.subplots(len(images), len(columns), figsize=(1.9 * len(columns), 1.9 * len(images)), squeeze=False)
    for r in range(len(images)):
        panels = [common.as_rgb(images[r]), viz.colorize_labels(masks[r]), band[r]]
        panels += [viz.colorize_labels(p[r]) for p in preds.values()]
        for c, (ax, panel) in enumerate(zip(axes[r], panels)):
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
    return common.save_figure(fig, cfg.out, filename)


def main():
    cfg = common.setup("skips", __doc__, FULL, QUICK)
    scores = {name: [] for name in MODELS}
    for seed in cfg.seeds:
        test = SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=seed + 1000)
        images = np.stack([test[i]["image"] for i in range(len(test))])
        masks = np.stack([test[i]["mask"] for i in range(len(test))])
        band = boundary_band(masks, cfg.radius)
        print(f"seed {seed}: {band.mean():.0%} of the held-out pixels lie within {cfg.radius} px of a boundary",
              flush=True)
        trained = {}
        for name in MODELS:
            result, trained[name] = train_and_score(name, cfg, seed, images, masks)
            scores[name].append(result)
            print(f"  {name:20s} boundary acc {result['boundary']:.3f}  interior acc {result['interior']:.3f}  "
                  f"mIoU {result['miou']:.3f}  ({result['seconds']:.0f} s)", flush=True)
        if seed == cfg.seeds[0]:
            draw(trained, images[:4], masks[:4], cfg)

    def column(name, key):
        return [s[key] for s in scores[name]]

    rows = [[name, scores[name][0]["params"]]
            + [common.spread(column(name, key)) for key in ("miou", "interior", "boundary")]
            + [f"{np.mean(column(name, 'seconds')):.0f}"] for name in MODELS]
    common.print_table(["model", "params", "held-out mIoU", f"interior acc (> {cfg.radius} px from a boundary)",
                        f"boundary acc (<= {cfg.radius} px)", "train s"], rows,
                       title=f"{cfg.steps} steps of batch {cfg.batch}, Adam lr {cfg.lr}, {cfg.size} x {cfg.size} "
                             f"scenes, mean ± sd over {len(cfg.seeds)} seed(s)")
    for better, worse in PAIRS:
        common.lesson(f"{better} labels boundary pixels better than {worse}", column(better, "boundary"),
                      column(worse, "boundary"), names=(better, worse))


if __name__ == "__main__":
    main()
