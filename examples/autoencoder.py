"""Autoencoder: squeeze a scene through a small code and rebuild it.

Lecture idea: an encoder E maps a picture to a code z of a few numbers, a decoder D maps the code
back to a picture, and both are trained together on reconstruction alone:

    loss = || D(E(x)) - x ||   (mean squared error over pixels)

No labels are needed. The code is too small to copy the picture (32 numbers for 32 x 32 x 3 =
3072 values), so the network must learn what scenes have in common -- floor, wall, a few blobs
-- and keep only what tells this scene apart. Two things to look at:

  * reconstructions: blurry but right in layout; the table compares them with no code at all (the
    mean training image), with a code of 8 numbers instead of 32 (the bottleneck's trade: fewer
    numbers, less of the scene kept), with a 4 x 4 thumbnail (48 numbers) blown up bilinearly,
    and with PCA's 32 components (the best *linear* code of that size, for reference);
  * interpolation: decoding the straight line (1 - t) z_a + t z_b between the codes of two scenes
    gives pictures in between (bottom strip); blending the pixels (1 - t) x_a + t x_b instead
    just cross-fades the two photos (top strip).

Run:  python examples/autoencoder.py           (3 seeds, about 2 minutes on 2 CPU cores)
      python examples/autoencoder.py --quick   (reduced: checks that it runs)
"""
import numpy as np

import common
import tinypix
import tinypix.nn.functional as F
from tinypix import optim
from tinypix.data import DataLoader, SyntheticScenes
from tinypix.models import AutoEncoder

FULL = dict(size=32, train_scenes=500, test_scenes=100, batch=16, steps=1500, latent=32, small_latent=8, base=16,
            lr=2e-3, strip=8)
QUICK = dict(size=32, train_scenes=8, test_scenes=8, batch=4, steps=2, latent=32, small_latent=8, base=4, lr=2e-3,
             strip=4)


def reconstruction_loss(model, batch):
    x = batch["image"]
    return F.mse_loss(model(x), x)


def psnr(mse):
    """Peak signal-to-noise ratio in dB for images in [0, 1]: higher is better."""
    return 10 * np.log10(1.0 / mse)


def thumbnail_baseline(x, cells=4):
    """x: (N, 3, H, W) -> the mean of each of cells x cells blocks, blown up bilinearly to (H, W)."""
    N, C, H, W = x.shape
    small = x.reshape(N, C, cells, H // cells, cells, W // cells).mean(axis=(3, 5))
    return F.interpolate(tinypix.from_numpy(np.ascontiguousarray(small)), size=(H, W), mode="bilinear",
                         align_corners=False).numpy()


def pca_reconstruction(train, x, k):
    """Project x: (N, 3, H, W) onto the top ``k`` principal components of ``train`` and back."""
    a = train.reshape(len(train), -1).astype(np.float64)
    mean = a.mean(axis=0)
    _, _, vt = np.linalg.svd(a - mean, full_matrices=False)       # rows of vt: the components
    v = vt[:k]
    flat = (x.reshape(len(x), -1) - mean) @ v.T @ v + mean
    return flat.reshape(x.shape).astype(x.dtype)


def train_autoencoder(cfg, train_set, latent, seed):
    """A fresh AutoEncoder with a code of ``latent`` numbers, trained on reconstruction alone."""
    tinypix.manual_seed(seed)
    model = AutoEncoder(3, size=cfg.size, latent_dim=latent, base_channels=cfg.base, stages=3)
    loader = DataLoader(train_set, batch_size=cfg.batch, shuffle=True, drop_last=True, seed=seed)
    print(f"seed {seed}: autoencoder {cfg.size}x{cfg.size}x3 = {3 * cfg.size ** 2} values -> code of {latent} "
          f"numbers -> back; {common.count_parameters(model)} parameters", flush=True)
    common.train(model, loader, reconstruction_loss, cfg.steps, optim.Adam(model.parameters(), lr=cfg.lr))
    return model


def run_seed(cfg, seed):
    """Every reconstruction of one seed's held-out scenes: {name: (numbers kept, MSE)}, the main
    model, the held-out images and the seconds its training took."""
    train_set = SyntheticScenes(cfg.train_scenes, size=cfg.size, seed=seed)
    test_set = SyntheticScenes(cfg.test_scenes, size=cfg.size, seed=seed + 1000)
    x_test = next(iter(DataLoader(test_set, batch_size=len(test_set))))["image"]
    x = x_test.numpy()
    train_images = np.stack([train_set[i]["image"] for i in range(len(train_set))])
    with common.Stopwatch() as t:
        model = train_autoencoder(cfg, train_set, cfg.latent, seed)
    small = train_autoencoder(cfg, train_set, cfg.small_latent, seed)
    kept = {"mean training image (no code)": (0, np.broadcast_to(train_images.mean(axis=0), x.shape)),
            f"autoencoder, code of {cfg.small_latent}": (cfg.small_latent, common.predict(small, x_test).numpy()),
            f"autoencoder, code of {cfg.latent}": (cfg.latent, common.predict(model, x_test).numpy()),
            "4x4 thumbnail, bilinear up": (48, thumbnail_baseline(x)),
            f"PCA, {cfg.latent} components (linear)": (cfg.latent, pca_reconstruction(train_images, x, cfg.latent))}
    return {name: (n, float(np.mean((pred - x) ** 2))) for name, (n, pred) in kept.items()}, model, x_test, t.seconds


def main():
    cfg = common.setup("autoencoder", __doc__, FULL, QUICK)
    per_seed, seconds = [], []
    for seed in cfg.seeds:
        results, model, x_test, s = run_seed(cfg, seed)
        per_seed.append(results)
        seconds.append(s)
        if seed == cfg.seeds[0]:
            pictures(cfg, model, x_test)
    names = list(per_seed[0])
    mse = {name: [r[name][1] for r in per_seed] for name in names}
    db = {name: psnr(np.asarray(mse[name])) for name in names}
    common.print_table(["reconstruction", "numbers kept", "held-out MSE", "PSNR dB"],
                       [[name, per_seed[0][name][0], common.spread(mse[name]), common.spread(db[name])]
                        for name in names],
                       title=f"{cfg.test_scenes} held-out scenes per seed, {cfg.steps} steps per autoencoder "
                             f"(about {np.mean(seconds):.0f} s each), mean ± sd over {len(cfg.seeds)} seed(s)")
    main_arm, small_arm = f"autoencoder, code of {cfg.latent}", f"autoencoder, code of {cfg.small_latent}"
    common.lesson(f"trained on reconstruction alone, no labels, a code of {cfg.latent} numbers rebuilds held-out scenes "
                  "far better than no code at all (the mean training image; PSNR dB)",
                  db[main_arm], db["mean training image (no code)"], names=("code", "no code"), margin=1.0)
    common.lesson(f"the bottleneck is a trade: a code of {cfg.small_latent} numbers keeps less of the scene than one "
                  f"of {cfg.latent} (PSNR dB)", db[main_arm], db[small_arm],
                  names=(f"{cfg.latent} numbers", f"{cfg.small_latent} numbers"))


def pictures(cfg, model, x_test):
    """reconstructions.png (inputs over their reconstructions) and interpolation.png."""
    x = x_test.numpy()
    reconstruction = common.predict(model, x_test).numpy()
    plt = common.pyplot()
    n = min(6, len(x))
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4), squeeze=False)
    for i in range(n):
        for r, (pic, label) in enumerate(((x[i], "input"), (reconstruction[i], "D(E(x))"))):
            axes[r, i].imshow(common.as_rgb(pic), interpolation="nearest")
            axes[r, i].set_axis_off()
            if i == 0:
                axes[r, i].set_title(label, fontsize=8, loc="left")
    common.save_figure(fig, cfg.out, "reconstructions.png")

    # Interpolation: the straight line between two codes, decoded, next to a pixel cross-fade.
    pair = x_test[0:2]
    model.eval()
    with tinypix.no_grad():
        z = model.encode(pair).numpy()                                  # (2, latent)
        ts = np.linspace(0, 1, cfg.strip, dtype=np.float32)[:, None]
        codes = tinypix.from_numpy((1 - ts) * z[0] + ts * z[1])        # (strip, latent)
        decoded = model.decode(codes).numpy()
    blended = (1 - ts[:, :, None, None]) * x[0] + ts[:, :, None, None] * x[1]
    fig, axes = plt.subplots(2, cfg.strip, figsize=(1.5 * cfg.strip, 3.3), squeeze=False)
    for i in range(cfg.strip):
        for r, pic in enumerate((blended[i], decoded[i])):
            axes[r, i].imshow(common.as_rgb(pic), interpolation="nearest")
            axes[r, i].set_axis_off()
        axes[0, i].set_title(f"t = {float(ts[i, 0]):.2f}", fontsize=8)
    axes[0, 0].set_title("pixels: t = 0.00", fontsize=8)
    axes[1, 0].set_title("codes: decoded", fontsize=8)
    common.save_figure(fig, cfg.out, "interpolation.png")


if __name__ == "__main__":
    main()
